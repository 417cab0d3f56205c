//! Serving the router over HTTPS (or plain HTTP for tests) until shutdown. STUB: owned by the `binary` package.
