//! Drawing series into an SVG with plotters: IOPS (left) and p99 latency (right, log
//! scale) against queue depth (log2 scale, ticks at the depths measured).

use super::Series;
use anyhow::Context;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::Path;

const FONT: &str = "sans-serif";

/// Line colours that stay distinct on white (the "tab10" palette).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// `1234567` as `1.23M`, `45600` as `45.6k`.
fn si(v: f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.2}M", v / 1e6),
        a if a >= 1e3 => format!("{:.1}k", v / 1e3),
        _ => format!("{v:.0}"),
    }
}

/// Draws `series` into `path` (1200×520 SVG, two panels, one legend entry per series).
pub fn draw(path: &Path, title: &str, series: &[Series]) -> anyhow::Result<()> {
    let all = || series.iter().flat_map(|s| s.points.iter());
    anyhow::ensure!(all().next().is_some(), "no points to plot");
    let mut xs: Vec<f64> = all().map(|p| (p.qd.max(1) as f64).log2()).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (x0, x1) = (xs[0] - 0.3, xs[xs.len() - 1] + 0.3);
    let iops_max = all().map(|p| p.iops).fold(0.0, f64::max).max(1.0) * 1.25;
    let lat_min = all().map(|p| p.p99_us).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let lat_min = if lat_min.is_finite() { lat_min / 1.6 } else { 1.0 };
    // Headroom above the highest point (most of a decade on the log axis) for the legend.
    let lat_max = all().map(|p| p.p99_us).fold(0.0, f64::max).max(lat_min * 2.0) * 6.0;

    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, (FONT, 22))?;
    let panels = root.split_evenly((1, 2));
    // Ticks at powers of two only (the axis is log2 of the depth).
    let qd_label = |x: &f64| if (x - x.round()).abs() < 1e-6 { format!("{:.0}", x.exp2()) } else { String::new() };
    let x_ticks = (x1 - x0).ceil() as usize + 1;

    let mut left = ChartBuilder::on(&panels[0])
        .caption("IOPS (higher is better)", (FONT, 18))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0..iops_max)?;
    mesh(&mut left, "IOPS", x_ticks, &qd_label)?;
    lines(&mut left, series, |p| p.iops)?;

    let mut right = ChartBuilder::on(&panels[1])
        .caption("p99 latency (lower is better)", (FONT, 18))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, (lat_min..lat_max).log_scale())?;
    mesh(&mut right, "p99 latency, us (log scale)", x_ticks, &qd_label)?;
    lines(&mut right, series, |p| p.p99_us)?;
    root.present().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The grid and axis labels of a panel: queue depth (log2) across, `y_desc` up.
fn mesh<'a, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    y_desc: &str,
    x_ticks: usize,
    qd_label: &dyn Fn(&f64) -> String,
) -> anyhow::Result<()>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("queue depth (log scale)")
        .y_desc(y_desc)
        .x_labels(x_ticks)
        .x_label_formatter(qd_label)
        .y_label_formatter(&|y| si(*y))
        .label_style((FONT, 14))
        .light_line_style(TRANSPARENT)
        .draw()?;
    Ok(())
}

/// One line with point markers per series, and the legend.
fn lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    series: &[Series],
    figure: impl Fn(&super::Point) -> f64,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = s.points.iter().map(|p| ((p.qd.max(1) as f64).log2(), figure(p))).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
