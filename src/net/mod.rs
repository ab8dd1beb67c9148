//! HTTPS client and server over rustls with mutual TLS, recording every exchange.

pub mod client;
pub mod server;
pub mod tls;

#[cfg(test)]
mod tests;
