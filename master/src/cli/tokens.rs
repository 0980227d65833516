//! `burst token create|list|revoke`.

use super::client::Client;
use super::commands::print_json;
use super::exit::{CliError, Exit};
use super::output::Output;
use crate::model::{CreateTokenRequest, Role, TokenView};

/// Prints the value alone on stdout (so `> file` keeps just the token),
/// and a reminder on stderr.
pub async fn create(
    client: &Client,
    name: String,
    role: Role,
    out: &Output,
) -> Result<Exit, CliError> {
    let answer = client
        .create_token(&CreateTokenRequest { name, role })
        .await?;
    eprintln!(
        "created token {:?} (role {}); it is shown only this once:",
        answer.name, answer.role
    );
    out.line(&answer.token)?;
    Ok(Exit::Success)
}

pub async fn list(client: &Client, json: bool, out: &Output) -> Result<Exit, CliError> {
    let tokens: Vec<TokenView> = client.get_json("/api/v1/tokens").await?;
    if json {
        return print_json(out, &tokens);
    }
    out.line(&format!("{:<24} {:<10} CREATED BY", "NAME", "ROLE"))?;
    for t in &tokens {
        let by = t.created_by.as_deref().unwrap_or("-");
        out.line(&format!("{:<24} {:<10} {by}", t.name, t.role.as_str()))?;
    }
    Ok(Exit::Success)
}

pub async fn revoke(client: &Client, name: &str, out: &Output) -> Result<Exit, CliError> {
    client.revoke_token(name).await?;
    out.line(&format!("token {name}: revoked"))?;
    Ok(Exit::Success)
}
