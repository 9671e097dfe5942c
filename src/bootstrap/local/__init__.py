"""Running the stack on this machine: local servers and `bootstrap up`."""
