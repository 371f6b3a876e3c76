//! The failover picture: one blackhole run with `health`, bytes per second on each path over
//! time (from the server's link counters), the outage shaded by its edges and the daemon's
//! decisions marked; written as SVG and PNG (`cargo xtask lab --scenario failover`).

use std::path::Path;

use anyhow::{Context as _, bail};
use plotters::{coord::Shift, prelude::*};

use super::{
    Scenario, Subject,
    run::{self, HealthSettings, Records, Timing},
};

/// Where a font for the labels may be (Debian's `fonts-dejavu-core`, then others).
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 480);

/// What the lab's failover scenario runs.
pub(crate) struct LabConfig {
    pub(crate) outage: u64,
    pub(crate) after: u64,
    pub(crate) hold: u64,
}

/// Runs the blackhole scenario once with `health` and writes `failover.svg` and
/// `failover.png` into `out`; returns their paths.
pub(crate) fn lab(config: &LabConfig, out: &Path) -> anyhow::Result<[std::path::PathBuf; 2]> {
    register_font()?;
    mptcpd_tests::interrupt::install()?;
    let timing = Timing {
        before: std::time::Duration::from_secs(4),
        outage: std::time::Duration::from_secs(config.outage),
        after: std::time::Duration::from_secs(config.after),
    };
    println!(
        "lab: failover: two 20 Mbit/s paths, our daemon with addr_adv and health (hold {} s); \
         path B blackholed {} s after the start for {} s",
        config.hold,
        timing.before.as_secs(),
        config.outage
    );
    let records = run::once(
        Scenario::Blackhole,
        Subject::Health,
        timing,
        &HealthSettings {
            hold_secs: config.hold,
            extra: Vec::new(),
        },
        "lab",
    )?;
    for (at, line) in &records.decisions {
        println!(
            "lab: at {:.1} s: {}",
            at.saturating_sub(records.ready).as_secs_f64(),
            line.split_once("path ").map_or(line.as_str(), |(_, l)| l)
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let svg = out.join("failover.svg");
    let png = out.join("failover.png");
    draw(&SVGBackend::new(&svg, SIZE).into_drawing_area(), &records)?;
    draw(
        &BitMapBackend::new(&png, SIZE).into_drawing_area(),
        &records,
    )?;
    Ok([svg, png])
}

fn register_font() -> anyhow::Result<()> {
    let Some(path) = FONTS.iter().find(|p| Path::new(p).is_file()) else {
        bail!(
            "no font for the plot's labels ({}): install fonts-dejavu-core",
            FONTS.join(", ")
        );
    };
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    // The registry keeps fonts for the process's life.
    plotters::style::register_font(FAMILY, FontStyle::Normal, Vec::leak(bytes))
        .map_err(|_| anyhow::anyhow!("{path} is not a font plotters can read"))
}

/// Mbit/s per path between consecutive samples, at the interval's middle (seconds since the
/// connections were ready).
pub(crate) fn rates(records: &Records) -> [Vec<(f64, f64)>; 2] {
    let zero = records.ready.as_secs_f64();
    let mut out = [Vec::new(), Vec::new()];
    for pair in records.samples.windows(2) {
        let [a, b] = pair else { continue };
        let secs = b.at.saturating_sub(a.at).as_secs_f64();
        if secs <= 0.0 {
            continue;
        }
        let mid = f64::midpoint(a.at.as_secs_f64(), b.at.as_secs_f64()) - zero;
        for (path, series) in out.iter_mut().enumerate() {
            #[expect(
                clippy::cast_precision_loss,
                reason = "bytes per sample interval are far below 2^52"
            )]
            let bits = b.rx[path].saturating_sub(a.rx[path]) as f64 * 8.0;
            series.push((mid, bits / secs / 1e6));
        }
    }
    out
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, records: &Records) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let zero = records.ready.as_secs_f64();
    let since = |d: std::time::Duration| d.as_secs_f64() - zero;
    let [a, b] = rates(records);
    let x_max = since(records.end).max(1.0);
    let y_max = a.iter().chain(&b).map(|p| p.1).fold(1.0, f64::max) * 1.25;
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "path B blackholed mid-transfer: bytes per path, health's decisions",
            (FAMILY, 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("Mbit/s received")
        .label_style((FAMILY, 14))
        .draw()
        .map_err(plot_error)?;
    for (series, color, name) in [(a, BLUE, "path A"), (b, RED, "path B")] {
        chart
            .draw_series(LineSeries::new(series, color.stroke_width(2)))
            .map_err(plot_error)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    let mut marks: Vec<(f64, String, RGBColor)> = Vec::new();
    if let Some(at) = records.fault {
        marks.push((since(at), "B blackholed".to_owned(), BLACK));
    }
    if let Some(at) = records.restored {
        marks.push((since(at), "B restored".to_owned(), BLACK));
    }
    // The state changes only: the actions (each re-probe) would crowd the picture.
    for (at, line) in records
        .decisions
        .iter()
        .filter(|(_, l)| l.contains(" (was "))
    {
        let said = line.split_once("path ").map_or(line.as_str(), |(_, l)| l);
        let words: Vec<&str> = said.split_whitespace().take(2).collect();
        marks.push((since(*at), format!("health: {}", words.join(" ")), GREEN));
    }
    for (i, (x, label, color)) in marks.iter().enumerate() {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*x, 0.0), (*x, y_max)],
                color.stroke_width(1),
            )))
            .map_err(plot_error)?;
        // Staggered, so that marks close in time stay readable.
        #[expect(clippy::cast_precision_loss, reason = "a handful of marks")]
        let y = y_max * (0.97 - 0.06 * (i % 4) as f64);
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*x + x_max / 200.0, y),
                (FAMILY, 13).into_font().color(color),
            )))
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

/// plotters' errors hold the backend's error, which need not be `Send`: kept as text.
fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {e}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Records, rates};
    use crate::failover::peer::{Received, Sample};

    #[test]
    fn rates_are_per_path_between_samples_from_the_start() {
        let sample = |ms, a, b| Sample {
            at: Duration::from_millis(ms),
            rx: [a, b],
        };
        let records = Records {
            ready: Duration::from_secs(1),
            fault: None,
            restored: None,
            end: Duration::from_secs(2),
            received: Received::default(),
            samples: vec![
                sample(1000, 0, 0),
                sample(1100, 125_000, 0),
                sample(1200, 250_000, 12_500),
            ],
            p99_us: 0.0,
            decisions: Vec::new(),
        };
        let [a, b] = rates(&records);
        assert_eq!(a.len(), 2);
        assert!(
            (a[0].0 - 0.05).abs() < 1e-9 && (a[0].1 - 10.0).abs() < 1e-9,
            "{a:?}"
        );
        assert!((b[1].1 - 1.0).abs() < 1e-9, "{b:?}");
    }
}
