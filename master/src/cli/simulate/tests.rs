use std::path::Path;

use super::*;

const CONFIG: &str = r#"
[pools.linux]
provider = "local"
labels = ["linux"]
max_workers = 4
idle_timeout = "2m"

[simulate.pools.linux]
boot = "1m"
price_per_hour = 3.6
"#;

const TRACE: &str = "submit,labels,duration\n0,linux,300\n100,linux,60\n";

fn files(dir: &Path, trace: &str) -> (PathBuf, PathBuf) {
    let (config, trace_path) = (dir.join("sim.toml"), dir.join("t.csv"));
    std::fs::write(&config, CONFIG).unwrap();
    std::fs::write(&trace_path, trace).unwrap();
    (config, trace_path)
}

fn request(config: PathBuf, trace: PathBuf) -> Request {
    Request {
        config: Some(config),
        trace: Some(trace),
        compare: None,
        json: false,
        chart: None,
        seed: 1,
        horizon: None,
        generate: None,
        flags: SimFlags::default(),
    }
}

fn run_to_string(req: Request) -> (Result<Exit, CliError>, String, String) {
    let (out, buf) = Output::buffer();
    let mut err = Vec::new();
    let result = run(req, &out, &mut err);
    (
        result,
        buf.contents(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn a_replay_prints_its_report_and_its_wall_time_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (config, trace) = files(dir.path(), TRACE);
    let (result, out, err) = run_to_string(request(config, trace));
    assert!(matches!(result, Ok(Exit::Success)), "{result:?}");
    assert!(out.starts_with("policy: burst (config)\n"), "{out}");
    assert!(out.contains("\nlinux       2"), "{out}");
    assert!(err.starts_with("simulated 1 policy in "), "{err}");
}

#[test]
fn json_and_compare_give_one_report_per_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (config, trace) = files(dir.path(), TRACE);
    let mut req = request(config, trace);
    req.json = true;
    let (_, out, _) = run_to_string(req.clone());
    let one: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Two builds, each waiting its 60 s boot (the first worker is busy
    // when the second build comes).
    assert_eq!(one["total"]["builds"], 2);
    assert_eq!(one["total"]["wait_p95_secs"], 60.0);
    req.compare = Some(CompareSet::Anchors);
    let (_, out, _) = run_to_string(req);
    let all: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(all.len(), simulate::anchors().len());
    assert_eq!(all[0]["policy"], "burst (config)");
}

#[test]
fn flags_override_the_files_simulated_providers() {
    let dir = tempfile::tempdir().unwrap();
    let (config, trace) = files(dir.path(), TRACE);
    let mut req = request(config, trace);
    req.json = true;
    req.flags.boot = Some(BootTime::fixed(Duration::from_secs(10)));
    let (_, out, _) = run_to_string(req.clone());
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["total"]["wait_max_secs"], 10.0);
    req.flags.failure_rate = Some(1.0);
    let (result, _, _) = run_to_string(req);
    let err = result.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("--failure-rate 1"), "{err}");
}

#[test]
fn bad_input_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let (config, trace) = files(
        dir.path(),
        "submit,labels,duration\n0,linux,300\n5,linux,soon\n",
    );
    let (result, _, _) = run_to_string(request(config.clone(), trace.clone()));
    let err = Chain(&result.map(|_| ()).unwrap_err()).to_string();
    assert!(
        err.contains(&format!(
            "failed to read trace {}: line 3: `duration`",
            trace.display()
        )),
        "{err}"
    );
    std::fs::write(&config, "[pools.linux]\nprovider = \"local\"\nlabels = [\"linux\"]\n[simulate.pools.linux]\nboot = \"later\"\n").unwrap();
    let (result, _, _) = run_to_string(request(config.clone(), trace));
    let err = result.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("sim.toml:5"), "{err}");
}

#[test]
fn generate_prints_a_trace_that_reads_back() {
    let mut req = request(PathBuf::new(), PathBuf::new());
    req.generate = Some(Kind::Steady);
    let (result, out, _) = run_to_string(req);
    assert!(matches!(result, Ok(Exit::Success)));
    assert!(
        out.starts_with("# burst simulate --generate steady --seed 1: "),
        "{out:.80}"
    );
    let trace = Trace::parse(&out, Path::new("steady.csv")).unwrap();
    assert!(trace.jobs.len() > 1000);
}
