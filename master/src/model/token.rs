//! API tokens: who may call the HTTP API, and with which role.

use serde::{Deserialize, Serialize};

use super::Millis;

/// What a token may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read `/metrics` only: what a Prometheus server scrapes with.
    Metrics,
    /// Read builds, logs, workers and metrics.
    Viewer,
    /// Also submit builds and cancel its own.
    Submitter,
    /// Everything, including cancelling any build and managing tokens.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Metrics => "metrics",
            Role::Viewer => "viewer",
            Role::Submitter => "submitter",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "metrics" => Some(Role::Metrics),
            "viewer" => Some(Role::Viewer),
            "submitter" => Some(Role::Submitter),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored token: never its value, only the value's SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub name: String,
    pub hash: String,
    pub role: Role,
    pub created_at: Millis,
    pub created_by: Option<String>,
}

impl TokenRecord {
    pub fn view(&self) -> TokenView {
        TokenView {
            name: self.name.clone(),
            role: self.role,
            created_at: self.created_at,
            created_by: self.created_by.clone(),
        }
    }
}

/// `GET /api/v1/tokens`: a token as the API shows it, without value or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub name: String,
    pub role: Role,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTokenRequest {
    pub name: String,
    pub role: Role,
}

/// The one answer that carries a token's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTokenResponse {
    pub name: String,
    pub role: Role,
    pub token: String,
}
