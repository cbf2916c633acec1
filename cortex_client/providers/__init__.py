"""Provider adapters: one per wire format. Each is constructed cheaply and builds its HTTP/SDK clients
on first use, so an unused provider costs nothing and a local request never imports a cloud SDK."""
