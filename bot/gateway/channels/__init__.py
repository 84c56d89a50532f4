"""Channel adapters: each verifies who is speaking and translates to and from `Reply`s."""
