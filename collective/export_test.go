package collective

// Crash simulates c's process dying: connections close with no goodbye.
func Crash(c *Communicator) { c.crash() }
