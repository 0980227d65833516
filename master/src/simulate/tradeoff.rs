//! `--compare anchors --chart FILE.svg`: every policy as one point, idle
//! instance-hours across and queue-wait p95 up, so a trade-off between the
//! two shows at a glance (the lower left corner wins both).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use super::report::Report;

pub fn write(
    path: &Path,
    title: &str,
    reports: &[Report],
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let point = |r: &Report| (r.total.idle_secs / 3600.0, r.total.wait_p95_secs);
    let max_x = reports.iter().map(|r| point(r).0).fold(1.0, f64::max);
    let max_y = reports.iter().map(|r| point(r).1).fold(1.0, f64::max);
    let root = SVGBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        // Room on the right for the last point's label.
        .build_cartesian_2d(0.0..max_x * 1.6, 0.0..max_y * 1.2)?;
    chart
        .configure_mesh()
        .x_desc("idle instance-hours (fewer is cheaper)")
        .y_desc("queue wait p95, s (lower is faster)")
        .draw()?;
    let colour = RGBColor(31, 119, 180);
    for r in reports {
        let at = point(r);
        chart.draw_series(std::iter::once(Circle::new(at, 5, colour.filled())))?;
        chart.draw_series(std::iter::once(Text::new(
            r.policy.clone(),
            (at.0 + max_x * 0.01, at.1 + max_y * 0.015),
            ("sans-serif", 13),
        )))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::report::Figures;

    fn report(policy: &str, idle_h: f64, p95: f64) -> Report {
        let total = Figures {
            name: "total".into(),
            builds: 1,
            wait_p50_secs: 0.0,
            wait_p95_secs: p95,
            wait_max_secs: p95,
            launches: 1,
            failed_launches: 0,
            busy_secs: 0.0,
            idle_secs: idle_h * 3600.0,
            booting_secs: 0.0,
            cost: 0.0,
            cost_per_build: 0.0,
        };
        Report {
            policy: policy.into(),
            simulated_secs: 1.0,
            builds: 1,
            unfinished: 0,
            pools: vec![],
            total,
            notes: vec![],
            start_order: vec![],
        }
    }

    #[test]
    fn every_policy_is_a_labelled_point() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.svg");
        let reports = [
            report("burst (config)", 414.0, 60.4),
            report("buildbot build_wait_timeout=0", 0.0, 87.0),
        ];
        write(&path, "trade-off", &reports).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for name in [
            "burst (config)",
            "buildbot build_wait_timeout=0",
            "idle instance-hours",
            "queue wait p95",
        ] {
            assert!(svg.contains(name), "{name} missing");
        }
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
    }
}
