//! `[secrets]` through the loader: values read, every mistake a problem
//! naming file, line and key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use super::expand::expand_submit;
use super::load::load_str_with_secret_env;
use super::{Config, ConfigError};

const BASE: &str = r#"[pools.local]
provider = "local"

[[builders]]
name = "deploy"

[[builders.steps]]
name = "push"
run = "true"
secrets = ["DEPLOY_KEY"]
"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes a secret file; returns its path.
    fn file(&self, name: &str, contents: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    fn load(&self, text: &str) -> Result<Config, ConfigError> {
        let env = |var: &str| match var {
            "NPM_TOKEN" => Some(OsString::from("npm-token-value-1")),
            "EMPTY" => Some(OsString::new()),
            _ => None,
        };
        load_str_with_secret_env(text, Path::new("F.toml"), &BTreeMap::new(), &env)
    }

    /// The problems, one per line, with the temp dir shown as DIR.
    fn errors(&self, text: &str) -> Vec<String> {
        let err = self.load(text).unwrap_err();
        let dir = self.dir.path().display().to_string();
        err.to_string()
            .replace(&dir, "DIR")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn with_secrets(table: &str) -> String {
    format!("{BASE}\n[secrets]\n{table}")
}

#[test]
fn values_are_read_from_files_and_the_environment() {
    let f = Fixture::new();
    let file = f.file("deploy", b"deploy-key-value\n");
    let crlf = f.file("crlf", b"crlf-key-value\r\n\n");
    let text = with_secrets(&format!(
        "DEPLOY_KEY = {{ file = {file:?} }}\nCRLF = {{ file = {crlf:?} }}\n\
         NPM = {{ env = \"NPM_TOKEN\" }}\n"
    ));
    let config = f.load(&text).unwrap();
    // A trailing newline (or several, or \r\n) is not part of the value.
    assert_eq!(
        config.secret_values.get("DEPLOY_KEY"),
        Some("deploy-key-value")
    );
    assert_eq!(config.secret_values.get("CRLF"), Some("crlf-key-value"));
    assert_eq!(config.secret_values.get("NPM"), Some("npm-token-value-1"));
    // Builds carry the names, never the values.
    let builds = expand_submit(&config, "deploy", &BTreeMap::new(), "s").unwrap();
    assert_eq!(builds[0].steps[0].secrets, ["DEPLOY_KEY"]);
    let json = serde_json::to_string(&builds[0].steps).unwrap();
    assert!(!json.contains("deploy-key-value"), "{json}");
    assert!(!format!("{config:?}").contains("deploy-key-value"));
}

#[test]
fn a_missing_file_names_file_line_and_key() {
    let f = Fixture::new();
    let text = with_secrets("DEPLOY_KEY = { file = \"/no/such/deploy-key\" }\n");
    assert_eq!(
        f.errors(&text),
        [
            "F.toml:13: secrets.DEPLOY_KEY.file: failed to read secret file /no/such/deploy-key: \
          No such file or directory (os error 2)"
        ]
    );
}

#[test]
fn an_unset_or_empty_variable_and_an_empty_file_are_errors() {
    let f = Fixture::new();
    let empty = f.file("empty", b"\n");
    let text = with_secrets(&format!(
        "DEPLOY_KEY = {{ env = \"NOT_SET_ANYWHERE\" }}\nB = {{ env = \"EMPTY\" }}\n\
         C = {{ file = {empty:?} }}\n"
    ));
    assert_eq!(
        f.errors(&text),
        [
            "F.toml:14: secrets.B.env: environment variable EMPTY is empty".to_owned(),
            "F.toml:15: secrets.C.file: secret file DIR/empty is empty".to_owned(),
            "F.toml:13: secrets.DEPLOY_KEY.env: environment variable NOT_SET_ANYWHERE is not set"
                .to_owned(),
        ]
    );
}

#[test]
fn short_values_are_refused_without_being_shown() {
    let f = Fixture::new();
    let short = f.file("short", b"abc1234\n");
    let text = with_secrets(&format!("DEPLOY_KEY = {{ file = {short:?} }}\n"));
    let errors = f.errors(&text);
    assert_eq!(
        errors,
        [
            "F.toml:13: secrets.DEPLOY_KEY.file: the value is 7 bytes; a secret needs at least 8 \
          (a shorter one would be masked all over the logs)"
        ]
    );
    let binary = f.file("binary", &[0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8]);
    let text = with_secrets(&format!("DEPLOY_KEY = {{ file = {binary:?} }}\n"));
    assert_eq!(
        f.errors(&text),
        ["F.toml:13: secrets.DEPLOY_KEY.file: secret file DIR/binary is not UTF-8"]
    );
}

#[test]
fn names_obey_the_env_policy() {
    let f = Fixture::new();
    let file = f.file("k", b"long-enough-value");
    let text = with_secrets(&format!(
        "DEPLOY_KEY = {{ file = {file:?} }}\nPATH = {{ file = {file:?} }}\n\
         LD_PRELOAD = {{ file = {file:?} }}\nBURST_TOKEN = {{ file = {file:?} }}\n\
         \"1BAD\" = {{ file = {file:?} }}\n"
    ));
    assert_eq!(
        f.errors(&text),
        [
            "F.toml:17: secrets.1BAD: secret name \"1BAD\" must match [A-Za-z_][A-Za-z0-9_]*",
            "F.toml:16: secrets.BURST_TOKEN: \"BURST_TOKEN\" cannot be a secret: BURST_TOKEN may \
             not be set by a submit: BURST_* variables change how programs run or belong to burst",
            "F.toml:15: secrets.LD_PRELOAD: \"LD_PRELOAD\" cannot be a secret: LD_PRELOAD may not \
             be set by a submit: LD_* variables change how programs run or belong to burst",
            "F.toml:14: secrets.PATH: \"PATH\" cannot be a secret: PATH may not be set by a \
             submit: it changes which programs run or what they load",
        ]
    );
}

#[test]
fn a_source_is_one_absolute_file_or_one_variable() {
    let f = Fixture::new();
    let text = with_secrets(
        "DEPLOY_KEY = { file = \"/a\", env = \"NPM_TOKEN\" }\nB = {}\nC = { file = \"rel/key\" }\n\
         D = { fiel = \"/x\" }\n",
    );
    let errors = f.errors(&text);
    assert_eq!(
        errors,
        ["F.toml:16: secrets.D.fiel: unknown field `fiel`, expected `file` or `env`"]
    );
    let text = with_secrets(
        "DEPLOY_KEY = { file = \"/a\", env = \"NPM_TOKEN\" }\nB = {}\nC = { file = \"rel/key\" }\n",
    );
    assert_eq!(
        f.errors(&text),
        [
            "F.toml:14: secrets.B: needs file = \"/path\" or env = \"VARIABLE\"",
            "F.toml:15: secrets.C.file: must be an absolute path (got rel/key)",
            "F.toml:13: secrets.DEPLOY_KEY.file: set one of file or env, not both",
        ]
    );
}

#[test]
fn an_unknown_secret_names_the_step() {
    let f = Fixture::new();
    let file = f.file("k", b"long-enough-value");
    let text = BASE.replace(
        "[\"DEPLOY_KEY\"]",
        "[\"DEPLOY_KEY\", \"NOPE\", \"DEPLOY_KEY\"]",
    ) + &format!("\n[secrets]\nDEPLOY_KEY = {{ file = {file:?} }}\n");
    assert_eq!(
        f.errors(&text),
        [
            "F.toml:10: builders[0].steps[0].secrets[1]: step \"push\" asks for unknown secret \
             \"NOPE\" (declared: DEPLOY_KEY)",
            "F.toml:10: builders[0].steps[0].secrets[2]: step \"push\" asks for secret \
             \"DEPLOY_KEY\" twice",
        ]
    );
    assert_eq!(
        f.errors(BASE),
        [
            "F.toml:10: builders[0].steps[0].secrets[0]: step \"push\" asks for unknown secret \
          \"DEPLOY_KEY\" (none are declared)"
        ]
    );
}

#[test]
fn no_param_axis_or_step_env_may_set_a_secret() {
    let f = Fixture::new();
    let file = f.file("k", b"long-enough-value");
    let text =
        BASE.replace(
            "name = \"deploy\"\n",
            "name = \"deploy\"\nparams = { deploy_key = {} }\nmatrix = { npm = [\"a\"] }\n",
        )
        .replace(
            "run = \"true\"\n",
            "run = \"true\"\nenv = { DEPLOY_KEY = \"plain\" }\n",
        ) + &format!(
            "\n[secrets]\nDEPLOY_KEY = {{ file = {file:?} }}\nNPM = {{ env = \"NPM_TOKEN\" }}\n"
        );
    assert_eq!(
        f.errors(&text),
        [
            "F.toml:6: builders[0].params.deploy_key: param \"deploy_key\" would set secret \
             \"DEPLOY_KEY\"; a param may not",
            "F.toml:7: builders[0].matrix.npm: axis \"npm\" would set secret \"NPM\"; an axis may not",
            "F.toml:12: builders[0].steps[0].env.DEPLOY_KEY: DEPLOY_KEY is secret \"DEPLOY_KEY\"; \
             a step's env may not set it (ask for it with secrets = [\"DEPLOY_KEY\"])",
        ]
    );
}

#[test]
fn a_submit_cannot_set_a_secret_even_if_validation_was_skipped() {
    let text = BASE.replace(
        "name = \"deploy\"\n",
        "name = \"deploy\"\nparams = { DEPLOY_KEY = {} }\n",
    ) + "\n[secrets]\nDEPLOY_KEY = { env = \"X\" }\n";
    let config: Config = toml::from_str(&text).unwrap();
    let given = BTreeMap::from([("DEPLOY_KEY".to_owned(), "mine".to_owned())]);
    let err = expand_submit(&config, "deploy", &given, "s").unwrap_err();
    assert!(err.is_bad_param(), "{err}");
    assert_eq!(
        err.to_string(),
        "parameter \"DEPLOY_KEY\" refused: it would set secret \"DEPLOY_KEY\""
    );
}
