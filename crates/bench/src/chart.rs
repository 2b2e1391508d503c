//! `bench.png`: cold start, throughput and peak memory side by side. Text is drawn with
//! plotters' pure-Rust `ab_glyph` renderer and Debian's DejaVu Sans (`fonts-dejavu-core`, which
//! `make bench` installs when missing): no fontconfig or freetype.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::coldstart::{Lang, CASES};
use crate::report::{figures, Results};
use crate::stats::median;
use crate::throughput::Retry;

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];
const RUST: RGBColor = RGBColor(206, 92, 38);
const PYTHON: RGBColor = RGBColor(55, 118, 171);
const GREY: RGBColor = RGBColor(120, 120, 120);
const STANDARD: RGBColor = RGBColor(150, 150, 150);
const UNCAPPED: RGBColor = RGBColor(236, 160, 120);
const PACED: RGBColor = RGBColor(60, 120, 190);

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn load_font() -> Result<(), String> {
    let path = FONTS
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or("DejaVu Sans not found (apt-get install fonts-dejavu-core)")?;
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    // plotters keeps registered fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{path}: not a usable font"))
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

pub fn draw(r: &Results, path: &Path) -> Result<(), String> {
    load_font()?;
    let root = BitMapBackend::new(path, (1800, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let m = &r.machine;
    let title = format!(
        "make bench — {} cores ({}), {:.0} GiB, {}",
        m.cores, m.cpu, m.mem_gib, m.date
    );
    let body = root
        .titled(&title, ("sans-serif", 22).into_font())
        .map_err(err)?;
    let (cold, rest) = body.split_horizontally(540);
    let (throughput, memory) = rest.split_horizontally(820);
    cold_panel(&cold, r)?;
    throughput_panel(&throughput, r)?;
    memory_panel(&memory, r)?;
    root.present().map_err(err)
}

fn label_style(size: u32, v: VPos) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(HPos::Center, v))
}

/// A group of bars: its label and one `(value, colour)` a bar.
type Group = (String, Vec<(f64, RGBColor)>);
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// Bars on a log axis with value labels: `(group label, [(value, colour)])`.
fn bars(
    area: &Area,
    caption: &str,
    unit: &str,
    groups: &[Group],
    legend: &[(&str, RGBColor)],
    line: Option<(f64, &str)>,
    notes: &[String],
) -> Result<(), String> {
    let (lo, hi) = log_range(groups, line);
    let n = groups.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18).into_font())
        .margin(14)
        .x_label_area_size(28)
        .y_label_area_size(78)
        .build_cartesian_2d(0f64..n, (lo..hi).log_scale())
        .map_err(err)?;
    draw_mesh(&mut chart, groups, unit)?;
    for (i, (_, values)) in groups.iter().enumerate() {
        draw_group(&mut chart, i, values, lo)?;
        if let Some(note) = notes.get(i).filter(|n| !n.is_empty()) {
            draw_note(&mut chart, i, values, note, lo)?;
        }
    }
    if let Some((y, text)) = line {
        draw_line(&mut chart, n, y, text)?;
    }
    draw_legend(&mut chart, legend)
}

/// The y axis: a quarter of the smallest positive value (at least 0.1) to eight times the
/// largest (a goal line included), room for the labels above the bars.
fn log_range(groups: &[Group], line: Option<(f64, &str)>) -> (f64, f64) {
    let values = || groups.iter().flat_map(|(_, v)| v.iter().map(|(x, _)| *x));
    let max = values()
        .chain(line.map(|(y, _)| y))
        .filter(|x| x.is_finite())
        .fold(1.0_f64, f64::max);
    let min = values()
        .filter(|x| x.is_finite() && *x > 0.0)
        .fold(max, f64::min);
    ((min / 4.0).max(0.1), max * 8.0)
}

fn draw_mesh(chart: &mut Chart, groups: &[Group], unit: &str) -> Result<(), String> {
    // Labels at every half step: the group names sit at the centres (0.5, 1.5, …).
    let names: Vec<&str> = groups.iter().map(|(name, _)| name.as_str()).collect();
    let x_label = |x: &f64| {
        let i = (x - 0.5).round();
        if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
            names
                .get(i as usize)
                .map_or(String::new(), |s| s.to_string())
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * groups.len() + 1)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        })
        .y_desc(unit)
        .label_style(("sans-serif", 12).into_font())
        .draw()
        .map_err(err)
}

/// Group `i`'s bars side by side in its slot, each with its value above it; values that do
/// not fit a log axis (zero, negative, not measured) are left out.
fn draw_group(
    chart: &mut Chart,
    i: usize,
    values: &[(f64, RGBColor)],
    lo: f64,
) -> Result<(), String> {
    let w = 0.8 / values.len().max(1) as f64;
    for (j, (v, colour)) in values.iter().enumerate() {
        if !v.is_finite() || *v <= 0.0 {
            continue;
        }
        let x0 = i as f64 + 0.1 + j as f64 * w;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, lo), (x0 + w * 0.9, *v)],
                colour.filled(),
            )))
            .map_err(err)?;
        let text = if *v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        };
        chart
            .draw_series(std::iter::once(Text::new(
                text,
                (x0 + w * 0.45, *v * 1.08),
                label_style(13, VPos::Bottom),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// A note on its own line above the group's tallest bar.
fn draw_note(
    chart: &mut Chart,
    i: usize,
    values: &[(f64, RGBColor)],
    note: &str,
    lo: f64,
) -> Result<(), String> {
    let top = values
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| v.is_finite())
        .fold(lo, f64::max);
    chart
        .draw_series(std::iter::once(Text::new(
            note.to_string(),
            (i as f64 + 0.5, top * 1.45),
            label_style(12, VPos::Bottom),
        )))
        .map_err(err)?;
    Ok(())
}

/// A horizontal goal line across all `n` groups, its text at the right end.
fn draw_line(chart: &mut Chart, n: f64, y: f64, text: &str) -> Result<(), String> {
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, y), (n, y)],
            GREY.stroke_width(2),
        )))
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(Text::new(
            text.to_string(),
            (n - 0.05, y * 1.05),
            TextStyle::from(("sans-serif", 13).into_font())
                .pos(Pos::new(HPos::Right, VPos::Bottom)),
        )))
        .map_err(err)?;
    Ok(())
}

/// The colours' meanings, upper left; empty series carry the labels.
fn draw_legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    legend: &[(&str, RGBColor)],
) -> Result<(), String> {
    for (name, colour) in legend {
        let colour = *colour;
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], colour.filled()));
    }
    if legend.is_empty() {
        return Ok(());
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 13).into_font())
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

fn cold_panel(area: &Area, r: &Results) -> Result<(), String> {
    let Some(cold) = &r.cold else {
        return Ok(());
    };
    let med = |slug: &str, lang: Lang| {
        cold.iter()
            .find(|s| s.case.slug == slug && s.lang == lang)
            .map_or(f64::NAN, |s| {
                median(
                    &s.samples
                        .iter()
                        .map(|x| x.first_response_ms)
                        .collect::<Vec<_>>(),
                )
            })
    };
    let groups: Vec<Group> = CASES
        .iter()
        .map(|c| {
            (
                c.slug.to_string(),
                vec![
                    (med(c.slug, Lang::Rust), RUST),
                    (med(c.slug, Lang::Python), PYTHON),
                ],
            )
        })
        .collect();
    let notes: Vec<String> = CASES
        .iter()
        .map(|c| {
            format!(
                "{:.0}× faster",
                med(c.slug, Lang::Python) / med(c.slug, Lang::Rust)
            )
        })
        .collect();
    bars(
        area,
        "Cold start: exec → first response",
        "ms (median, log scale)",
        &groups,
        &[("Rust release binary", RUST), ("Python + boto3", PYTHON)],
        None,
        &notes,
    )
}

fn throughput_panel(area: &Area, r: &Results) -> Result<(), String> {
    let Some(tp) = &r.throughput else {
        return Ok(());
    };
    let colour = |s: &crate::throughput::Scenario| match (s.spec.retry, s.spec.cap) {
        (Retry::StandardInProcess, _) => STANDARD,
        (Retry::PacedBinary, _) => PACED,
        (_, None) => UNCAPPED,
        _ => RUST,
    };
    let groups: Vec<Group> = tp
        .iter()
        .map(|s| {
            (
                s.spec.short_name(),
                vec![(median(&figures(s).msgs_per_s), colour(s))],
            )
        })
        .collect();
    let notes: Vec<String> = tp
        .iter()
        .map(|s| {
            let share = median(&figures(s).share_of_cap);
            if share.is_finite() {
                format!("{share:.0}% of cap")
            } else {
                String::new()
            }
        })
        .collect();
    bars(
        area,
        "screen-text throughput vs fake Comprehend",
        "messages/s (median, log scale)",
        &groups,
        &[
            ("capped, adaptive retry (production)", RUST),
            ("capped, standard retry (in-process)", STANDARD),
            ("capped, paced to the cap (COMPREHEND_TPS)", PACED),
            ("no cap", UNCAPPED),
        ],
        None,
        &notes,
    )
}

fn memory_panel(area: &Area, r: &Results) -> Result<(), String> {
    let mut groups: Vec<Group> = Vec::new();
    if let Some(cold) = &r.cold {
        let rss = |lang: Lang| {
            cold.iter()
                .find(|s| s.case.slug == "st-upload" && s.lang == lang)
                .map_or(f64::NAN, |s| {
                    median(&s.samples.iter().map(|x| x.rss_mib).collect::<Vec<_>>())
                })
        };
        groups.push((
            "cold, 11 msgs".into(),
            vec![(rss(Lang::Rust), RUST), (rss(Lang::Python), PYTHON)],
        ));
    }
    if let Some(s) = r.throughput.as_ref().and_then(|tp| {
        tp.iter()
            .find(|s| s.spec.messages >= 100_000 && s.spec.latency.is_zero())
    }) {
        groups.push((
            "screen-text 100k".into(),
            vec![(median(&figures(s).rss), RUST)],
        ));
    }
    if let Some(e) = &r.evaluate {
        groups.push((
            format!("evaluate {}k", e.items / 1000),
            vec![(
                median(&e.runs.iter().map(|x| x.rss_mib).collect::<Vec<_>>()),
                RUST,
            )],
        ));
    }
    bars(
        area,
        "Peak RSS (VmHWM)",
        "MiB (median, log scale)",
        &groups,
        &[("Rust", RUST), ("Python + boto3", PYTHON)],
        Some((64.0 / 1.048_576, "goal 64 MB")),
        &[],
    )
}
