"""Local fakes of the outside parties (LINE, Telegram, agencies' receivers) the tests start."""
