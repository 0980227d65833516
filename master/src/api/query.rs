//! Query-string conventions shared by the list endpoints.

/// Rows a list answers with when the client names no `limit`.
pub fn default_limit() -> u32 {
    100
}

/// The most rows one answer carries, whatever the client asks.
pub fn clamp(limit: u32) -> u32 {
    limit.min(10_000)
}
