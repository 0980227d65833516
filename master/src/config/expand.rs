//! Turning a submit (builder + params) into builds, one per matrix cell.

use std::collections::BTreeMap;

use super::error::SubmitError;
use super::labels::{cell_labels, pool_for_labels, pool_summary};
use super::matrix::{cell_count, cells, Matrix, MAX_CELLS};
use super::params::resolve;
use super::schema::{BuilderConfig, Config};
use super::secrets::secret_named;
use crate::model::NewBuild;

/// The builds one submit of `builder` creates. Only declared params (and
/// matrix axes) may be given, and none that `env_policy` refuses; declared
/// defaults fill in the rest. A param named like a matrix axis picks that
/// axis's value; every param also reaches the steps as an environment
/// variable. Refused whole if any cell's labels have no pool.
pub fn expand_submit(
    config: &Config,
    builder: &str,
    params: &BTreeMap<String, String>,
    submit_id: &str,
) -> Result<Vec<NewBuild>, SubmitError> {
    let Some(b) = config.builders.iter().find(|b| b.name == builder) else {
        return Err(SubmitError::UnknownBuilder {
            builder: builder.to_owned(),
            known: config.builders.iter().map(|b| b.name.clone()).collect(),
        });
    };
    let params = &resolve(b, params)?;
    // Validation refuses params and axes named like a secret; a config that
    // skipped it still cannot let a submit replace one.
    if let Some((name, secret)) = params
        .keys()
        .find_map(|n| secret_named(config, n).map(|s| (n, s)))
    {
        return Err(SubmitError::ForbiddenParam {
            name: name.clone(),
            reason: format!("it would set secret {secret:?}"),
        });
    }
    let matrix = restrict(b, params)?;
    if cell_count(&matrix).is_none_or(|n| n > MAX_CELLS) {
        return Err(misconfigured(
            b,
            format!("the matrix has more than {MAX_CELLS} cells"),
        ));
    }
    if let Some((axis, _)) = matrix.iter().find(|(_, values)| values.is_empty()) {
        return Err(misconfigured(
            b,
            format!("matrix axis {axis:?} has no values"),
        ));
    }
    let retries = b.retries.unwrap_or(config.master.build_retries);
    cells(&matrix)
        .into_iter()
        .map(|cell| {
            let labels = cell_labels(&b.labels, &cell).map_err(|e| misconfigured(b, e))?;
            if pool_for_labels(config, &labels).is_none() {
                return Err(SubmitError::Unservable {
                    labels,
                    pools: pool_summary(config),
                });
            }
            // Params, then the cell, then the step's own env: later wins.
            let mut env = params.clone();
            env.extend(
                cell.iter()
                    .map(|(axis, value)| (axis.to_uppercase(), value.clone())),
            );
            let steps = b
                .steps
                .iter()
                .map(|step| {
                    let mut spec = step.to_spec();
                    let own = std::mem::replace(&mut spec.env, env.clone());
                    spec.env.extend(own);
                    spec
                })
                .collect();
            let steps = super::caches::with_cache_steps(&b.caches, steps);
            Ok(NewBuild {
                submit_id: submit_id.to_owned(),
                builder: b.name.clone(),
                cell,
                params: params.clone(),
                labels,
                steps,
                retries,
                submitted_by: None,
            })
        })
        .collect()
}

/// The builder's matrix with axes named by a param narrowed to that value.
fn restrict(b: &BuilderConfig, params: &BTreeMap<String, String>) -> Result<Matrix, SubmitError> {
    let mut matrix = b.matrix.clone();
    for (axis, values) in &mut matrix {
        let Some(wanted) = params.get(axis) else {
            continue;
        };
        if !values.contains(wanted) {
            return Err(SubmitError::NotAnAxisValue {
                axis: axis.clone(),
                value: wanted.clone(),
                values: values.clone(),
            });
        }
        *values = vec![wanted.clone()];
    }
    Ok(matrix)
}

fn misconfigured(b: &BuilderConfig, reason: String) -> SubmitError {
    SubmitError::Misconfigured {
        builder: b.name.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Command;

    const CONFIG: &str = r#"
[master]
build_retries = 2

[pools.linux]
provider = "local"
labels = ["linux", "x86", "arm"]

[pools.mac]
provider = "local"
labels = ["mac", "arm"]

[[builders]]
name = "grid"
labels = ["{os}", "{arch}", "{os}"]
matrix = { os = ["linux", "mac"], arch = ["x86", "arm"] }
params = { REF = {}, ARCH = {} }
retries = 0

[[builders.steps]]
name = "build"
run = "make"
env = { OS = "from-step", MODE = "release" }

[[builders.steps]]
name = "test"
argv = ["make", "test"]

[[builders]]
name = "plain"
steps = [{ name = "s", run = "true" }]

[[builders]]
name = "declared"
params = { MODE = { default = "debug", allowed = ["debug", "release"] } }
steps = [{ name = "s", run = "true", env = { MODE = "from-step", KEEP = "1" } }, { name = "t", run = "true" }]
"#;

    fn config() -> Config {
        match toml::from_str(CONFIG) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn test_config_is_valid_apart_from_the_unserved_cell() {
        // linux+arm and mac+arm are served; mac+x86 is not.
        let found: Vec<String> = super::super::validate::check(&config())
            .into_iter()
            .map(|i| i.message)
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("[mac, x86]"), "{found:?}");
    }

    #[test]
    fn a_two_by_two_matrix_is_four_builds() {
        let mut config = config();
        if let Some(mac) = config.pools.get_mut("mac") {
            mac.labels.push("x86".into());
        }
        let builds = expand_submit(&config, "grid", &params(&[("REF", "main")]), "sub-1").unwrap();
        let cells: Vec<String> = builds
            .iter()
            .map(|b| format!("{}/{}", b.cell["arch"], b.cell["os"]))
            .collect();
        assert_eq!(cells, ["x86/linux", "x86/mac", "arm/linux", "arm/mac"]);
        let labels: Vec<Vec<String>> = builds.iter().map(|b| b.labels.clone()).collect();
        assert_eq!(labels[0], ["linux", "x86"]);
        assert_eq!(labels[3], ["arm", "mac"]);
        for b in &builds {
            assert_eq!(b.submit_id, "sub-1");
            assert_eq!(b.builder, "grid");
            assert_eq!(b.retries, 0);
            assert_eq!(b.params, params(&[("REF", "main")]));
            let build = &b.steps[0];
            assert_eq!(build.command, Command::Script("make".into()));
            // The step's own env wins over the cell, the cell over params.
            assert_eq!(build.env["OS"], "from-step");
            assert_eq!(build.env["ARCH"], b.cell["arch"]);
            assert_eq!(build.env["MODE"], "release");
            assert_eq!(build.env["REF"], "main");
            let test = &b.steps[1];
            assert_eq!(
                test.command,
                Command::Argv(vec!["make".into(), "test".into()])
            );
            assert_eq!(test.env["OS"], b.cell["os"]);
            assert_eq!(test.env.len(), 3);
        }
    }

    #[test]
    fn cell_overrides_a_param_of_the_same_env_name() {
        let builds = expand_submit(
            &config(),
            "grid",
            &params(&[("os", "linux"), ("ARCH", "p")]),
            "s",
        )
        .unwrap();
        assert!(builds
            .iter()
            .all(|b| b.steps[1].env["ARCH"] == b.cell["arch"]));
    }

    #[test]
    fn a_param_restricts_its_axis() {
        let builds = expand_submit(&config(), "grid", &params(&[("os", "linux")]), "s").unwrap();
        let cells: Vec<String> = builds
            .iter()
            .map(|b| format!("{}/{}", b.cell["arch"], b.cell["os"]))
            .collect();
        assert_eq!(cells, ["x86/linux", "arm/linux"]);
        // The param is still an env var (lower-case here) and is recorded.
        assert_eq!(builds[0].steps[1].env["os"], "linux");
        assert_eq!(builds[0].params, params(&[("os", "linux")]));
        let both = expand_submit(
            &config(),
            "grid",
            &params(&[("os", "mac"), ("arch", "arm")]),
            "s",
        )
        .unwrap();
        assert_eq!(both.len(), 1);
        assert_eq!(both[0].labels, ["arm", "mac"]);
    }

    #[test]
    fn a_param_outside_the_axis_is_refused() {
        let err = expand_submit(&config(), "grid", &params(&[("os", "bsd")]), "s").unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter os=\"bsd\" is not a value of matrix axis \"os\" (values: linux, mac)"
        );
    }

    #[test]
    fn no_matrix_is_one_build_with_an_empty_cell() {
        let builds = expand_submit(&config(), "plain", &BTreeMap::new(), "s").unwrap();
        assert_eq!(builds.len(), 1);
        assert!(builds[0].cell.is_empty() && builds[0].labels.is_empty());
        assert_eq!(builds[0].retries, 2, "falls back to master.build_retries");
        assert!(builds[0].steps[0].env.is_empty());
    }

    #[test]
    fn unknown_builder_lists_the_known_ones() {
        let err = expand_submit(&config(), "nope", &BTreeMap::new(), "s").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown builder \"nope\"; known builders: grid, plain, declared"
        );
        let empty = Config {
            builders: vec![],
            ..config()
        };
        let err = expand_submit(&empty, "nope", &BTreeMap::new(), "s").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown builder \"nope\"; known builders: (none)"
        );
    }

    #[test]
    fn bad_param_names_are_refused() {
        for name in ["", "1A", "A-B", "A B", "X=Y"] {
            let err = expand_submit(&config(), "plain", &params(&[(name, "v")]), "s").unwrap_err();
            assert_eq!(err, SubmitError::InvalidParam { name: name.into() });
        }
    }

    #[test]
    fn defaults_reach_the_steps_and_are_recorded() {
        let builds = expand_submit(&config(), "declared", &BTreeMap::new(), "s").unwrap();
        assert_eq!(builds[0].params, params(&[("MODE", "debug")]));
        assert_eq!(builds[0].steps[1].env, params(&[("MODE", "debug")]));
        // A step's configured env still wins over a param.
        assert_eq!(
            builds[0].steps[0].env,
            params(&[("KEEP", "1"), ("MODE", "from-step")])
        );
        let builds =
            expand_submit(&config(), "declared", &params(&[("MODE", "release")]), "s").unwrap();
        assert_eq!(builds[0].steps[1].env["MODE"], "release");
    }

    #[test]
    fn undeclared_forbidden_and_disallowed_params_are_refused() {
        let refuse = |pairs: &[(&str, &str)]| {
            expand_submit(&config(), "declared", &params(pairs), "s").unwrap_err()
        };
        assert!(
            matches!(refuse(&[("OTHER", "1")]), SubmitError::UndeclaredParam { name, .. } if name == "OTHER")
        );
        assert!(
            matches!(refuse(&[("PATH", "/tmp/evil")]), SubmitError::ForbiddenParam { name, .. } if name == "PATH")
        );
        assert!(
            matches!(refuse(&[("MODE", "fast")]), SubmitError::ParamNotAllowed { name, .. } if name == "MODE")
        );
        for e in [
            refuse(&[("OTHER", "1")]),
            refuse(&[("PATH", "x")]),
            refuse(&[("MODE", "x")]),
        ] {
            assert!(e.is_bad_param(), "{e}");
        }
    }

    #[test]
    fn unservable_labels_are_refused_at_once() {
        let err = expand_submit(&config(), "grid", &params(&[("os", "mac")]), "s").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no pool serves labels [mac, x86]; pools: linux [linux, x86, arm], mac [mac, arm]"
        );
        // Restricted to served cells, the same builder is accepted.
        let ok = expand_submit(
            &config(),
            "grid",
            &params(&[("os", "mac"), ("arch", "arm")]),
            "s",
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn broken_builders_are_errors_not_panics() {
        let mut config = config();
        config.builders[0].labels.push("{nope}".into());
        config.builders[1].matrix.insert("empty".into(), vec![]);
        let err = expand_submit(&config, "grid", &params(&[("os", "linux")]), "s").unwrap_err();
        assert!(matches!(err, SubmitError::Misconfigured { .. }), "{err}");
        let err = expand_submit(&config, "plain", &BTreeMap::new(), "s").unwrap_err();
        assert!(matches!(err, SubmitError::Misconfigured { .. }), "{err}");
    }
}
