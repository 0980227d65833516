//! The EC2 contract is written down in four places: the provider
//! (`providers/src/ec2/contract.rs`, the user-data templates), the worker
//! (its flags), the Terraform module and the Packer images. These tests
//! parse the HCL and read the scripts, and fail when any of them drifts.

use std::path::{Path, PathBuf};

use burst_providers::ec2::contract::*;
use burst_providers::ec2::{placeholders, template, Platform};
use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::{Block, Body, Expression, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn parse(rel: &str) -> Body {
    hcl::parse(&read(rel)).unwrap_or_else(|e| panic!("parse {rel}: {e}"))
}

/// Every top-level block of every `.tf` file of the module.
fn module_blocks() -> Vec<Block> {
    let dir = repo().join("terraform/modules/burst");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .tf files in {}", dir.display());
    files
        .iter()
        .flat_map(|p| {
            let rel = p
                .strip_prefix(repo())
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned();
            parse(&rel).into_blocks()
        })
        .collect()
}

fn labels(b: &Block) -> Vec<&str> {
    b.labels.iter().map(|l| l.as_str()).collect()
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes()
        .find(|a| a.key.as_str() == key)
        .map(|a| &a.expr)
}

fn blocks<'a>(body: &'a Body, ident: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    body.blocks()
        .filter(move |b| b.identifier.as_str() == ident)
}

/// The module's `locals`, as an evaluation context (`local.NAME`).
fn locals_context(all: &[Block]) -> (Context<'static>, hcl::Map<String, Value>) {
    let plain = Context::new();
    let mut locals = hcl::Map::new();
    for b in all.iter().filter(|b| b.identifier.as_str() == "locals") {
        for a in b.body.attributes() {
            // Only literal locals evaluate without AWS data sources; the
            // contract ones are literal on purpose.
            if let Ok(v) = a.expr.evaluate(&plain) {
                locals.insert(a.key.to_string(), v);
            }
        }
    }
    let mut ctx = Context::new();
    ctx.declare_var("local", Value::Object(locals.clone()));
    (ctx, locals)
}

fn string(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v:?}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {v:?}"))
        .iter()
        .map(|s| string(s).to_owned())
        .collect()
}

#[test]
fn terraform_locals_match_the_provider() {
    let all = module_blocks();
    let (_, locals) = locals_context(&all);
    assert_eq!(string(&locals["tag_master"]), TAG_MASTER);
    assert_eq!(string(&locals["tag_pool"]), TAG_POOL);
    assert_eq!(string(&locals["tag_worker"]), TAG_WORKER);
    assert_eq!(strings(&locals["user_data_settings"]), USER_DATA_SETTINGS);
}

/// One IAM statement, evaluated as far as the contract needs.
#[derive(Debug)]
struct Statement {
    sid: String,
    actions: Vec<String>,
    /// The resource expressions, as written.
    resources: Vec<String>,
    /// (test, variable, values as written)
    conditions: Vec<(String, String, String)>,
}

fn master_policy() -> Vec<Statement> {
    let all = module_blocks();
    let (ctx, _) = locals_context(&all);
    let doc = all
        .iter()
        .find(|b| {
            b.identifier.as_str() == "data" && labels(b) == ["aws_iam_policy_document", "master"]
        })
        .expect("data \"aws_iam_policy_document\" \"master\" in terraform/modules/burst");
    blocks(&doc.body, "statement")
        .map(|st| {
            let eval = |key: &str| {
                attr(&st.body, key)
                    .unwrap_or_else(|| panic!("statement without {key}: {st:?}"))
                    .evaluate(&ctx)
                    .unwrap_or_else(|e| panic!("evaluate {key}: {e}"))
            };
            let resources = match attr(&st.body, "resources") {
                Some(Expression::Array(items)) => items.iter().map(|e| e.to_string()).collect(),
                other => panic!("resources must be a list: {other:?}"),
            };
            Statement {
                sid: string(&eval("sid")).to_owned(),
                actions: strings(&eval("actions")),
                resources,
                conditions: blocks(&st.body, "condition")
                    .map(|c| {
                        let get = |k: &str| {
                            attr(&c.body, k).unwrap_or_else(|| panic!("condition without {k}"))
                        };
                        let test = get("test").evaluate(&ctx).map(|v| string(&v).to_owned());
                        let var = get("variable")
                            .evaluate(&ctx)
                            .map(|v| string(&v).to_owned());
                        (
                            test.unwrap_or_else(|e| panic!("{e}")),
                            var.unwrap_or_else(|e| panic!("{e}")),
                            get("values").to_string(),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

fn has_condition(st: &Statement, variable: &str, values: &str) -> bool {
    st.conditions
        .iter()
        .any(|(_, v, vals)| v == variable && vals.split_whitespace().collect::<String>() == values)
}

#[test]
fn iam_grants_every_action_the_provider_calls() {
    let policy = master_policy();
    for action in IAM_ACTIONS {
        assert!(
            policy.iter().any(|s| s.actions.iter().any(|a| a == action)),
            "the master policy does not grant {action}"
        );
    }
}

#[test]
fn iam_launches_only_tagged_instances() {
    let policy = master_policy();
    let request_master = format!("aws:RequestTag/{TAG_MASTER}");
    let mut covered = false;
    for st in &policy {
        let on_instances = st.resources.iter().any(|r| r.contains(":instance/*"));
        if st.actions.iter().any(|a| a == "ec2:RunInstances") && on_instances {
            covered = true;
            assert!(
                has_condition(st, &request_master, "[var.master_id]"),
                "{}: RunInstances on instances without the {request_master} condition: {st:?}",
                st.sid
            );
            for tag in [TAG_POOL, TAG_WORKER] {
                assert!(
                    has_condition(st, &format!("aws:RequestTag/{tag}"), "[\"false\"]"),
                    "{}: RunInstances does not require the {tag} tag: {st:?}",
                    st.sid
                );
            }
        }
        if st.actions.iter().any(|a| a == "ec2:CreateTags") {
            assert!(
                has_condition(st, "ec2:CreateAction", "[\"RunInstances\"]"),
                "{}: CreateTags outside RunInstances: {st:?}",
                st.sid
            );
            assert!(
                has_condition(st, &request_master, "[var.master_id]"),
                "{}: CreateTags without the master tag: {st:?}",
                st.sid
            );
        }
        if st.actions.iter().any(|a| a == "ec2:TerminateInstances") {
            assert!(
                has_condition(
                    st,
                    &format!("ec2:ResourceTag/{TAG_MASTER}"),
                    "[var.master_id]"
                ),
                "{}: TerminateInstances on instances of other masters: {st:?}",
                st.sid
            );
        }
        if st.actions.iter().any(|a| a == "iam:PassRole") {
            assert_eq!(
                st.resources,
                ["aws_iam_role.worker.arn"],
                "{}: PassRole beyond the worker role",
                st.sid
            );
        }
        // Wildcard resources only for read-only calls.
        if st.resources.iter().any(|r| r == "\"*\"") {
            assert!(
                st.actions.iter().all(|a| a.starts_with("ec2:Describe")),
                "{}: '*' resource for {:?}",
                st.sid,
                st.actions
            );
        }
    }
    assert!(covered, "no statement lets the master run instances");
}

#[test]
fn launch_templates_require_imdsv2() {
    let all = module_blocks();
    let templates: Vec<&Block> = all
        .iter()
        .filter(|b| b.identifier.as_str() == "resource" && labels(b)[0] == "aws_launch_template")
        .collect();
    let names: Vec<&str> = templates.iter().map(|b| labels(b)[1]).collect();
    assert_eq!(names, ["linux", "windows"]);
    let ctx = Context::new();
    for t in templates {
        let meta = blocks(&t.body, "metadata_options")
            .next()
            .unwrap_or_else(|| panic!("{:?} has no metadata_options", labels(t)));
        let tokens = attr(&meta.body, "http_tokens").map(|e| e.evaluate(&ctx));
        assert_eq!(
            tokens.and_then(Result::ok),
            Some(Value::from("required")),
            "{:?}",
            labels(t)
        );
        let shutdown = attr(&t.body, "instance_initiated_shutdown_behavior")
            .map(|e| e.evaluate(&ctx))
            .and_then(Result::ok);
        assert_eq!(shutdown, Some(Value::from("terminate")), "{:?}", labels(t));
    }
}

#[test]
fn packer_images_require_imdsv2() {
    let ctx = Context::new();
    for rel in [
        "images/linux/burst-worker.pkr.hcl",
        "images/windows/burst-worker.pkr.hcl",
    ] {
        let body = parse(rel);
        let source = blocks(&body, "source")
            .find(|b| labels(b)[0] == "amazon-ebs")
            .unwrap_or_else(|| panic!("{rel}: no amazon-ebs source"));
        let eval = |b: &Body, k: &str| attr(b, k).map(|e| e.evaluate(&ctx)).and_then(Result::ok);
        assert_eq!(
            eval(&source.body, "imds_support"),
            Some(Value::from("v2.0")),
            "{rel}"
        );
        let meta = blocks(&source.body, "metadata_options")
            .next()
            .unwrap_or_else(|| panic!("{rel}: no metadata_options"));
        assert_eq!(
            eval(&meta.body, "http_tokens"),
            Some(Value::from("required")),
            "{rel}"
        );
        assert!(
            blocks(&body, "build").next().is_some(),
            "{rel}: no build block"
        );
    }
}

/// Packer's `length`, for a string: what the images' runner switch calls.
fn length(args: FuncArgs) -> Result<Value, String> {
    args[0]
        .as_str()
        .map(|s| Value::from(s.chars().count()))
        .ok_or_else(|| "length: expected a string".to_owned())
}

/// `var.NAME` for the given packer variables, `path.root` = "ROOT" and
/// `length`.
fn packer_context(vars: &[(&str, Value)]) -> Context<'static> {
    let var: hcl::Map<String, Value> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let path: hcl::Map<String, Value> = [("root".to_owned(), Value::from("ROOT"))]
        .into_iter()
        .collect();
    let mut ctx = Context::new();
    ctx.declare_var("var", Value::Object(var));
    ctx.declare_var("path", Value::Object(path));
    ctx.declare_func(
        "length",
        FuncDef::builder().param(ParamType::String).build(length),
    );
    ctx
}

#[test]
fn packer_images_install_the_actions_runner_only_when_asked() {
    let master_defaults = read("master/src/config/github.rs");
    for (rel, variable, upload, script, runner_dir, others) in [
        (
            "images/linux/burst-worker.pkr.hcl",
            "actions_runner_tarball",
            "/tmp/actions-runner.tar.gz",
            "install.sh",
            "/opt/actions-runner",
            vec![("step_sudo", Value::from(false))],
        ),
        (
            "images/windows/burst-worker.pkr.hcl",
            "actions_runner_zip",
            "C:\\Windows\\Temp\\actions-runner.zip",
            "install.ps1",
            "C:\\actions-runner",
            vec![
                ("nssm_url", Value::from("https://nssm.example/nssm.zip")),
                ("nssm_sha256", Value::from("00")),
            ],
        ),
    ] {
        let body = parse(rel);
        // Off by default: "" installs no runner.
        let var = blocks(&body, "variable")
            .find(|b| labels(b) == [variable])
            .unwrap_or_else(|| panic!("{rel}: no variable {variable:?}"));
        let default = attr(&var.body, "default")
            .map(|e| e.evaluate(&Context::new()))
            .and_then(Result::ok);
        assert_eq!(default, Some(Value::from("")), "{rel}: {variable}");
        let build = blocks(&body, "build")
            .next()
            .unwrap_or_else(|| panic!("{rel}: no build block"));
        let provisioners: Vec<&Block> = blocks(&build.body, "provisioner").collect();
        let plain = Context::new();
        let uploads = provisioners
            .iter()
            .position(|p| {
                labels(p) == ["file"]
                    && attr(&p.body, "destination")
                        .map(|e| e.evaluate(&plain))
                        .and_then(Result::ok)
                        == Some(Value::from(upload))
            })
            .unwrap_or_else(|| panic!("{rel}: no file provisioner uploading to {upload}"));
        let script_path = Value::from(format!("ROOT/{script}"));
        let installs = provisioners
            .iter()
            .position(|p| {
                attr(&p.body, "script")
                    .map(|e| e.evaluate(&packer_context(&[])))
                    .and_then(Result::ok)
                    .as_ref()
                    == Some(&script_path)
            })
            .unwrap_or_else(|| panic!("{rel}: no provisioner running {script}"));
        assert!(
            uploads < installs,
            "{rel}: the runner must be uploaded before {script} runs"
        );
        // Unset, a harmless stand-in is uploaded and the script is told
        // to skip; set, the given file goes up and the script unpacks it.
        for (given, source, flag) in [
            ("", format!("ROOT/{script}"), "ACTIONS_RUNNER=0"),
            (
                "runner.archive",
                "runner.archive".to_owned(),
                "ACTIONS_RUNNER=1",
            ),
        ] {
            let mut vars = others.clone();
            vars.push((variable, Value::from(given)));
            let ctx = packer_context(&vars);
            let uploaded = attr(&provisioners[uploads].body, "source").map(|e| e.evaluate(&ctx));
            assert_eq!(
                uploaded.and_then(Result::ok),
                Some(Value::from(source)),
                "{rel} with {variable} = {given:?}"
            );
            let env = attr(&provisioners[installs].body, "environment_vars")
                .map(|e| e.evaluate(&ctx))
                .and_then(Result::ok);
            let flagged = env
                .as_ref()
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(flag)));
            assert!(
                flagged,
                "{rel} with {variable} = {given:?}: {env:?} lacks {flag}"
            );
        }
        let install = read(&rel.replace("burst-worker.pkr.hcl", script));
        for needle in ["ACTIONS_RUNNER", upload, runner_dir] {
            assert!(install.contains(needle), "{script} lacks {needle}");
        }
        // Where the image puts the runner is where the master runs it from.
        assert!(
            master_defaults.contains(&format!("{runner_dir:?}.into()")),
            "the master's default runner dir is not {runner_dir}"
        );
    }
    // The runner writes into its directory, as the step user.
    let install = read("images/linux/install.sh");
    assert!(install.contains(&format!(
        "chown -R {LINUX_STEP_USER}:{LINUX_STEP_USER} /opt/actions-runner"
    )));
}

#[test]
fn linux_image_and_user_data_agree() {
    let unit = read("packaging/systemd/burst-worker.service");
    assert!(
        unit.lines()
            .any(|l| l == format!("EnvironmentFile={LINUX_ENV_FILE}")),
        "the unit must read {LINUX_ENV_FILE}"
    );
    assert!(unit
        .lines()
        .any(|l| l == format!("ExecStart={LINUX_WORKER_PATH}")));
    // A worker that exits orphaned (3) or drained by its master (0) powers
    // the instance off, which terminates it: nothing is left running.
    let stop_post = unit
        .lines()
        .find(|l| l.starts_with("ExecStopPost=+"))
        .expect("the unit powers off after the worker");
    assert!(
        stop_post.contains("0|3)") && stop_post.contains("poweroff"),
        "{stop_post}"
    );
    let install = read("images/linux/install.sh");
    assert!(install.contains(&format!("/tmp/burst-worker {LINUX_WORKER_PATH}")));
    assert!(install.contains(&format!("/etc/systemd/system/{LINUX_SERVICE}")));
    let pkr = read("images/linux/burst-worker.pkr.hcl");
    assert!(pkr.contains("\"${path.root}/../../packaging/systemd/burst-worker.service\""));
    assert!(pkr.contains("\"${path.root}/install.sh\""));

    let user_data = template(Platform::Linux);
    // The env file is `$run_dir/worker.env`, run_dir defaulting to /run/burst.
    let run_dir = LINUX_ENV_FILE
        .strip_suffix("/worker.env")
        .expect("the env file is worker.env");
    assert!(user_data.contains(&format!("run_dir=${{BURST_RUN_DIR:-{run_dir}}}\n")));
    assert!(user_data.contains(">\"$run_dir/worker.env\""));
    for needle in [LINUX_SERVICE, LINUX_WORKER_PATH, WORKER_BIN_OVERRIDE] {
        assert!(user_data.contains(needle), "linux user-data lacks {needle}");
    }
    // The worker runs as root, its steps as the image's step user, for whom
    // user-data closes the metadata service.
    assert!(
        !unit.lines().any(|l| l.starts_with("User=")),
        "the worker must run as root to run steps as {LINUX_STEP_USER}"
    );
    assert!(install.contains(&format!("useradd --system --create-home --home-dir /var/lib/burst --shell /bin/bash {LINUX_STEP_USER}")));
    assert!(user_data.contains(&format!("step_user={LINUX_STEP_USER}\n")));
    assert!(user_data.contains("-m owner --uid-owner \"$step_user\" -j REJECT"));
    // A step user with sudo could lift that block, so sudo is opt-in.
    let sudoers = install
        .lines()
        .position(|l| l.contains("NOPASSWD"))
        .expect("install.sh has the opt-in sudoers line");
    assert!(
        install
            .lines()
            .take(sudoers)
            .any(|l| l.trim_start() == "if [ \"${STEP_SUDO:-0}\" = 1 ]; then"),
        "sudo for {LINUX_STEP_USER} must be behind STEP_SUDO"
    );
    assert!(pkr.contains("\"STEP_SUDO=${var.step_sudo ? 1 : 0}\""));
    let step_sudo = pkr
        .split("variable \"step_sudo\"")
        .nth(1)
        .expect("the step_sudo variable");
    let default = step_sudo
        .lines()
        .find(|l| l.trim_start().starts_with("default"))
        .expect("step_sudo has a default");
    assert!(default.trim().ends_with("false"), "{default}");
}

#[test]
fn windows_image_and_user_data_agree() {
    let install = read("images/windows/install.ps1");
    assert!(install.contains(&format!("$worker = '{WINDOWS_WORKER_PATH}'")));
    assert!(install.contains(&format!("& $nssm install {WINDOWS_SERVICE} $worker")));
    let pkr = read("images/windows/burst-worker.pkr.hcl");
    assert!(pkr.contains("\"${path.root}/install.ps1\""));

    let user_data = template(Platform::Windows);
    for needle in [
        format!("Get-Service -Name '{WINDOWS_SERVICE}'"),
        format!("Services\\{WINDOWS_SERVICE}'"),
        format!("Start-Service -Name '{WINDOWS_SERVICE}'"),
        format!("& '{WINDOWS_WORKER_PATH}'"),
        WORKER_BIN_OVERRIDE.to_owned(),
    ] {
        assert!(
            user_data.contains(&needle),
            "windows user-data lacks {needle}"
        );
    }
}

#[test]
fn the_worker_reads_every_user_data_setting() {
    let args = read("worker/src/args.rs");
    let contract = read("common/src/launch_env.rs");
    for setting in USER_DATA_SETTINGS {
        // The flag names the variable, or the launch-contract constant
        // holding it.
        let constant = contract.lines().find_map(|l| {
            let rest = l.strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": &str = ")?;
            (value == format!("\"{setting}\";")).then(|| name.to_owned())
        });
        // The token itself arrives in the file BURST_TOKEN_FILE names.
        let constant = if *setting == SETTING_TOKEN {
            Some("TOKEN_FILE".to_owned())
        } else {
            constant
        };
        let reads = args.contains(&format!("env = \"{setting}\""))
            || constant.is_some_and(|c| args.contains(&format!("env = launch_env::{c}")));
        assert!(reads, "burst-worker has no flag reading {setting}");
    }
    for platform in [Platform::Linux, Platform::Windows] {
        assert_eq!(placeholders(template(platform)), USER_DATA_SETTINGS);
    }
}

#[test]
fn master_id_is_required_without_a_wildcard() {
    let vars = parse("terraform/modules/burst/variables.tf");
    let master_id = blocks(&vars, "variable")
        .find(|b| labels(b) == ["master_id"])
        .expect("variable \"master_id\"");
    assert!(
        attr(&master_id.body, "default").is_none(),
        "master_id must have no default"
    );
    assert!(
        blocks(&master_id.body, "validation").next().is_some(),
        "master_id must be validated (no wildcard)"
    );
    for name in [
        "allowed_ami_owners",
        "allowed_ami_ids",
        "allowed_instance_types",
    ] {
        assert!(
            blocks(&vars, "variable").any(|b| labels(b) == [name]),
            "variable {name} is missing"
        );
    }
}

#[test]
fn iam_limits_images_instance_types_and_requires_imdsv2() {
    let policy = master_policy();
    let run: Vec<&Statement> = policy
        .iter()
        .filter(|s| s.actions.iter().any(|a| a == "ec2:RunInstances"))
        .collect();
    for st in &run {
        if st.resources.iter().any(|r| r.contains(":instance/*")) {
            assert!(
                has_condition(st, "ec2:InstanceType", "var.allowed_instance_types"),
                "{}: RunInstances without the instance-type condition: {st:?}",
                st.sid
            );
            assert!(
                has_condition(st, "ec2:MetadataHttpTokens", "[\"required\"]"),
                "{}: RunInstances without IMDSv2 required: {st:?}",
                st.sid
            );
        }
        if st.resources.iter().any(|r| r.contains("image/")) {
            assert!(
                has_condition(st, "ec2:Owner", "local.allowed_ami_owners")
                    && has_condition(st, "ec2:ImageID", "local.allowed_ami_ids"),
                "{}: images without the owner and id conditions: {st:?}",
                st.sid
            );
        }
    }
    assert!(
        run.iter()
            .any(|s| s.resources.iter().any(|r| r.contains("image/"))),
        "no statement covers images"
    );
}
