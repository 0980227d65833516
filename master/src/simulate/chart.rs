//! `--chart FILE.svg`: workers by state and queued builds over the
//! simulated time, one line each (plotters, SVG only).

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use super::run::Timeline;

/// Counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub booting: u32,
    pub idle: u32,
    pub busy: u32,
    pub queued: u32,
}

/// Counts every `step` from 0 to the end.
pub fn samples(t: &Timeline, step: Duration) -> Vec<(Duration, Sample)> {
    let step = step.max(Duration::from_secs(1));
    let mut out = Vec::new();
    let mut at = Duration::ZERO;
    while at <= t.end {
        let mut s = Sample::default();
        for w in t
            .workers
            .iter()
            .filter(|w| w.launched <= at && at < w.ended)
        {
            if w.connected.is_none_or(|c| at < c) {
                s.booting += 1;
            } else if w.busy.iter().any(|(a, b)| *a <= at && at < *b) {
                s.busy += 1;
            } else {
                s.idle += 1;
            }
        }
        s.queued = t
            .builds
            .iter()
            .filter(|b| b.submitted <= at && b.started.is_none_or(|(_, s)| at < s))
            .count() as u32;
        out.push((at, s));
        at += step;
    }
    out
}

/// A line of the chart: its legend, colour and value.
type Series = (&'static str, RGBColor, fn(&Sample) -> u32);

pub fn write(path: &Path, title: &str, t: &Timeline) -> Result<(), Box<dyn Error + Send + Sync>> {
    // About 2,000 points across, at least one a minute.
    let step = Duration::from_secs((t.end.as_secs() / 2000).max(60));
    let points = samples(t, step);
    let top = points
        .iter()
        .map(|(_, s)| s.booting.max(s.idle).max(s.busy).max(s.queued))
        .max()
        .unwrap_or(0)
        .max(1);
    let hours = (t.end.as_secs_f64() / 3600.0).max(1.0 / 60.0);
    let root = SVGBackend::new(path, (1400, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(0.0..hours, 0u32..top + top / 10 + 1)?;
    chart
        .configure_mesh()
        .x_desc("hours from the start")
        .y_desc("workers / builds")
        .draw()?;
    let series: [Series; 4] = [
        ("busy workers", RGBColor(31, 119, 180), |s| s.busy),
        ("idle workers", RGBColor(255, 127, 14), |s| s.idle),
        ("booting workers", RGBColor(44, 160, 44), |s| s.booting),
        ("queued builds", RGBColor(214, 39, 40), |s| s.queued),
    ];
    for (label, colour, value) in series {
        let line = points
            .iter()
            .map(|(at, s)| (at.as_secs_f64() / 3600.0, value(s)));
        chart
            .draw_series(LineSeries::new(line, colour))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests;
