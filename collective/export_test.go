package collective

// Crash simulates c's process dying: connections close with no goodbye.
func Crash(c *Communicator) { c.crash() }

// OnHost makes o's rank claim to run on host, so tests can mix transports.
func OnHost(o Options, host string) Options { o.Host = host; return o }
