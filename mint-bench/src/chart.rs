//! SVG charts of a run: lines on logarithmic axes, one panel per database.
//!
//! Both axes are logarithmic in every chart (the x axis labelled in powers
//! of two): in-flight counts and offered
//! rates span two orders of magnitude, and on a logarithmic y axis a ratio
//! (Sv2 against the ceiling, p99 against p50) is a constant distance.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

/// One line of a panel.
pub struct Series {
    pub label: String,
    /// (x, y) points, drawn in the order given; non-positive values are
    /// left out (a logarithmic axis cannot show them).
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a reference line, not a measurement at each x).
    pub dashed: bool,
}

/// One panel: a title and its lines.
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
}

/// The axes' names and how their tick labels are written.
pub struct Axes {
    pub x: &'static str,
    pub y: &'static str,
    pub y_format: fn(f64) -> String,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `panels` side by side into an SVG file at `path`.
pub fn draw(path: &Path, caption: &str, axes: &Axes, panels: &[Panel]) -> anyhow::Result<()> {
    let width = 560 * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let root = root
        .titled(caption, ("sans-serif", 20))
        .map_err(plot_error)?;
    for (area, panel) in root
        .split_evenly((1, panels.len().max(1)))
        .iter()
        .zip(panels)
    {
        draw_panel(area, axes, panel)?;
    }
    root.present().map_err(plot_error)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    axes: &Axes,
    panel: &Panel,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let points = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|&(x, y)| x > 0.0 && y > 0.0)
    };
    let (x_lo, x_hi) = bounds(points().map(|p| p.0));
    let (y_lo, y_hi) = bounds(points().map(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (x_lo / 1.2..x_hi * 1.2).log_scale().base(2.0),
            (y_lo / 1.5..y_hi * 1.5).log_scale(),
        )
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        // Only the major lines: a logarithmic axis's minor lines are so
        // dense that they read as shading.
        .light_line_style(TRANSPARENT)
        .x_labels(8)
        .y_labels(10)
        .x_desc(axes.x)
        .y_desc(axes.y)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| (axes.y_format)(*y))
        .draw()
        .map_err(plot_error)?;
    for (n, series) in panel.series.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let shown: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|&(x, y)| x > 0.0 && y > 0.0)
            .collect();
        let style = colour.stroke_width(2);
        if !series.dashed {
            chart
                .draw_series(shown.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(plot_error)?;
        }
        let drawn = if series.dashed {
            chart.draw_series(DashedLineSeries::new(shown, 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(shown, style))
        }
        .map_err(plot_error)?;
        drawn
            .label(&series.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// The smallest and largest of `values`, or (1, 10) when there are none.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        (1.0, 10.0)
    } else {
        (lo, hi)
    }
}

fn plot_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_svg_with_every_label() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.svg");
        let panels = [
            Panel {
                title: "file".into(),
                series: vec![
                    Series {
                        label: "ceiling".into(),
                        points: vec![(1.0, 2000.0), (16.0, 6000.0), (256.0, 9000.0)],
                        dashed: false,
                    },
                    Series {
                        label: "Redis".into(),
                        points: vec![(1.0, 8000.0), (256.0, 8000.0)],
                        dashed: true,
                    },
                ],
            },
            Panel {
                title: "memory".into(),
                series: vec![Series {
                    label: "Sv2".into(),
                    points: vec![(1.0, 0.0), (16.0, 10_000.0)],
                    dashed: false,
                }],
            },
        ];
        let axes = Axes {
            x: "in flight",
            y: "quotes/s",
            y_format: |y| format!("{y:.0}"),
        };
        draw(&path, "throughput", &axes, &panels).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for label in [
            "throughput",
            "file",
            "memory",
            "ceiling",
            "Redis",
            "Sv2",
            "quotes/s",
        ] {
            assert!(svg.contains(label), "{label} missing");
        }
    }
}
