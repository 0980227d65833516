//! User-data: the boot script that hands a new instance its worker settings.
//! One template per platform; every value is quoted for the script's shell.

use super::contract;
use super::settings::Platform;
use crate::ProviderError;

const LINUX_TEMPLATE: &str = include_str!("templates/linux.sh");
const WINDOWS_TEMPLATE: &str = include_str!("templates/windows.ps1");

/// EC2 refuses user-data over 16 KiB (before base64).
const MAX_USER_DATA: usize = 16 * 1024;

/// The values one instance's user-data carries.
#[derive(Debug, Clone)]
pub struct UserDataValues<'a> {
    pub master_url: &'a str,
    pub worker_id: &'a str,
    pub token: &'a str,
    pub labels: &'a [String],
    pub imds_url: &'a str,
    /// Empty when the master serves no TLS.
    pub master_pin: &'a str,
}

impl UserDataValues<'_> {
    fn get(&self, setting: &str) -> Option<String> {
        Some(match setting {
            contract::SETTING_MASTER_URL => self.master_url.to_owned(),
            contract::SETTING_WORKER_ID => self.worker_id.to_owned(),
            contract::SETTING_TOKEN => self.token.to_owned(),
            contract::SETTING_LABELS => self.labels.join(","),
            contract::SETTING_IMDS_URL => self.imds_url.to_owned(),
            contract::SETTING_MASTER_PIN => self.master_pin.to_owned(),
            _ => return None,
        })
    }
}

/// The template text for a platform.
pub fn template(platform: Platform) -> &'static str {
    match platform {
        Platform::Linux => LINUX_TEMPLATE,
        Platform::Windows => WINDOWS_TEMPLATE,
    }
}

/// The `{{NAME}}` placeholders of a template, in order of appearance.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        found.push(&after[..end]);
        rest = &after[end + 2..];
    }
    found
}

/// Renders the user-data script (plain text, not yet base64).
pub fn render_user_data(
    platform: Platform,
    values: &UserDataValues<'_>,
) -> Result<String, ProviderError> {
    let template = template(platform);
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            ProviderError::permanent("failed to render user-data: unclosed placeholder")
        })?;
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| {
            ProviderError::permanent(format!(
                "failed to render user-data: unknown setting {name}"
            ))
        })?;
        if value.chars().any(char::is_control) {
            return Err(ProviderError::permanent(format!(
                "failed to render user-data: {name} contains a control character"
            )));
        }
        out.push_str(&quote(platform, &value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if out.len() > MAX_USER_DATA {
        return Err(ProviderError::permanent(format!(
            "failed to render user-data: {} bytes is over EC2's 16 KiB limit",
            out.len()
        )));
    }
    Ok(out)
}

/// A literal for the platform's script: POSIX single quotes, or PowerShell
/// single quotes (where a quote is doubled).
fn quote(platform: Platform, value: &str) -> String {
    match platform {
        Platform::Linux => format!("'{}'", value.replace('\'', r"'\''")),
        Platform::Windows => format!("'{}'", value.replace('\'', "''")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(labels: &'a [String], token: &'a str) -> UserDataValues<'a> {
        UserDataValues {
            master_url: "http://10.0.0.5:8481",
            worker_id: "ec2-0a1b2c3d",
            token,
            labels,
            imds_url: "http://169.254.169.254",
            master_pin: "sha256:0f0f",
        }
    }

    #[test]
    fn templates_set_exactly_the_contract_settings() {
        for platform in [Platform::Linux, Platform::Windows] {
            assert_eq!(
                placeholders(template(platform)),
                contract::USER_DATA_SETTINGS,
                "{platform:?}"
            );
        }
    }

    #[test]
    fn linux_quotes_for_sh() {
        let labels = vec!["linux".to_owned(), "it's".to_owned()];
        let text = render_user_data(Platform::Linux, &values(&labels, "t0k3n")).expect("render");
        assert!(text.starts_with("#!/bin/sh\n"));
        assert!(text.contains("BURST_TOKEN='t0k3n'\n"), "{text}");
        assert!(text.contains(r"BURST_LABELS='linux,it'\''s'"), "{text}");
        assert!(text.contains("BURST_IMDS_URL='http://169.254.169.254'\n"));
        assert!(text.contains("BURST_MASTER_PIN='sha256:0f0f'\n"), "{text}");
        assert!(!text.contains("{{"));
    }

    #[test]
    fn windows_quotes_for_powershell() {
        let labels = vec!["windows".to_owned(), "it's".to_owned()];
        let text = render_user_data(Platform::Windows, &values(&labels, "t0k3n")).expect("render");
        assert!(text.starts_with("<powershell>\n"));
        assert!(text.trim_end().ends_with("</powershell>"));
        assert!(text.contains("'BURST_TOKEN' = 't0k3n'\n"), "{text}");
        assert!(text.contains("'BURST_LABELS' = 'windows,it''s'"), "{text}");
        assert!(
            text.contains("'BURST_MASTER_PIN' = 'sha256:0f0f'\n"),
            "{text}"
        );
        assert!(!text.contains("{{"));
    }

    #[test]
    fn control_characters_are_refused() {
        let labels = vec!["a\nBURST_SETTINGS".to_owned()];
        let err = render_user_data(Platform::Linux, &values(&labels, "t"))
            .expect_err("newline must be refused");
        assert!(err.is_permanent());
        assert!(err.message.contains("BURST_LABELS"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn linux_script_runs_the_override_binary_with_the_settings() {
        use std::os::unix::fs::PermissionsExt;
        // The rendered script really runs under sh: the override binary sees
        // every setting, with quotes and dollars intact.
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("env.txt");
        let fake = dir.path().join("fake-worker");
        std::fs::write(&fake, format!("#!/bin/sh\nenv > '{}'\n", out.display()))
            .expect("write fake");
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let labels = vec!["x y".to_owned(), "it's $HOME".to_owned()];
        let script = render_user_data(Platform::Linux, &values(&labels, "s3cret")).expect("render");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("BURST_WORKER_BIN", &fake)
            .status()
            .expect("run sh");
        assert!(status.success());
        let env = std::fs::read_to_string(&out).expect("read env");
        assert!(env.contains("BURST_TOKEN=s3cret\n"), "{env}");
        assert!(env.contains("BURST_LABELS=x y,it's $HOME\n"), "{env}");
        assert!(env.contains("BURST_WORKER_ID=ec2-0a1b2c3d\n"), "{env}");
        assert!(env.contains("BURST_MASTER_PIN=sha256:0f0f\n"), "{env}");
        assert!(
            env.contains("BURST_IMDS_URL=http://169.254.169.254\n"),
            "{env}"
        );
    }
}
