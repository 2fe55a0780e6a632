//! Latency histograms drawn the way OSADL's latency plots are: value on the x axis, the
//! number of samples on a logarithmic y axis (so the rare worst cases stay visible), one
//! line per CPU. Writes SVG files; knows nothing of where the samples came from.

use std::path::Path;

use plotters::prelude::*;

use crate::Error;

/// One line of a plot: its label and `(value, count)` points, value ascending.
pub struct Series {
    pub label: String,
    pub points: Vec<(u64, u64)>,
}

/// `(value, count)` of `samples` in buckets of `width` (each point at its bucket's start).
pub fn histogram(samples: &[u64], width: u64) -> Vec<(u64, u64)> {
    let mut counts = std::collections::BTreeMap::new();
    for s in samples {
        *counts.entry(s / width.max(1) * width.max(1)).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

/// Writes an SVG at `path`: `title`, x axis `x_label`, log count axis, one line a series.
pub fn draw(path: &Path, title: &str, x_label: &str, series: &[Series]) -> Result<(), Error> {
    let err = |e: &dyn std::fmt::Display| Error::new(format!("plotting {}: {e}", path.display()));
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(1);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .max()
        .unwrap_or(1)
        .max(10);
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0u64..x_max + x_max / 20 + 1, (1u64..y_max * 2).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("samples (log)")
        .draw()
        .map_err(|e| err(&e))?;
    let colours = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, s) in series.iter().enumerate() {
        let colour = colours[i % colours.len()];
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|&(x, y)| (x, y.max(1))),
                colour.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_samples() {
        assert_eq!(
            histogram(&[1, 2, 11, 19, 35], 10),
            [(0, 2), (10, 2), (30, 1)]
        );
        assert_eq!(histogram(&[7], 0), [(7, 1)]);
    }

    #[test]
    fn writes_an_svg_with_its_labels() {
        let dir = std::env::temp_dir().join(format!("bulkhead-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        let series = [Series {
            label: "CPU 2".into(),
            points: vec![(1251, 999), (1300, 1)],
        }];
        draw(&path, "wake path", "instructions", &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("CPU 2") && svg.contains("wake path"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
