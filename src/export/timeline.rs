//! The timeline chart of a bundle: matching records and their bytes per time bin, ACCEPT,
//! REJECT and records without an action stacked, as a self-contained SVG with UTC labels.
//! Written by hand (no fonts, scripts or external references) so it opens anywhere and its
//! bytes depend only on the records.

use std::fmt::Write;

use crate::output::human_bytes;
use crate::record::{Action, FlowRecord};
use crate::time::format_rfc3339;

/// Bin widths to choose from, in seconds: the smallest that keeps the chart within
/// [`MAX_BINS`] bars is used.
const BIN_WIDTHS: &[u64] = &[60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86_400, 7 * 86_400];
const MAX_BINS: u64 = 150;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const TITLE_HEIGHT: f64 = 70.0;
const PANEL_HEIGHT: f64 = 200.0;
const PANEL_GAP: f64 = 60.0;
const LEGEND_HEIGHT: f64 = 40.0;
const MAX_TITLE_CHARS: usize = 110;
const MAX_X_LABELS: u64 = 6;

/// Bar colours: accepted, rejected, no action (`-` or a format without `action`).
const COLOURS: [&str; 3] = ["#2e7d32", "#c62828", "#9e9e9e"];
const KINDS: [&str; 3] = ["ACCEPT", "REJECT", "no action"];

/// The chosen bins and what fell into each: per bin, records and bytes per kind.
#[derive(Debug, PartialEq, Eq)]
pub struct Timeline {
    /// Start of the first bin (a multiple of `width` seconds since the epoch), in Unix seconds.
    pub first: u64,
    pub width: u64,
    pub records: Vec<[u64; 3]>,
    pub bytes: Vec<[u64; 3]>,
    /// Matching records without a `start` time, which no bin can hold.
    pub untimed: u64,
}

impl Timeline {
    /// Bins the records by `start`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a FlowRecord>) -> Timeline {
        let mut points = Vec::new();
        let mut untimed = 0;
        for r in records {
            let kind = match r.action {
                Some(Action::Accept) => 0,
                Some(Action::Reject) => 1,
                None => 2,
            };
            match r.start {
                Some(t) => points.push((t, kind, r.bytes.unwrap_or(0))),
                None => untimed += 1,
            }
        }
        let (Some(lo), Some(hi)) = (points.iter().map(|p| p.0).min(), points.iter().map(|p| p.0).max()) else {
            return Timeline {
                first: 0,
                width: BIN_WIDTHS[0],
                records: Vec::new(),
                bytes: Vec::new(),
                untimed,
            };
        };
        let fits = |w: u64| hi / w - lo / w < MAX_BINS;
        let width = BIN_WIDTHS
            .iter()
            .copied()
            .find(|&w| fits(w))
            .unwrap_or_else(|| (hi - lo).div_ceil(MAX_BINS - 1).div_ceil(86_400) * 86_400);
        let first = lo / width * width;
        let bins = (hi / width - lo / width + 1) as usize;
        let mut records = vec![[0u64; 3]; bins];
        let mut bytes = vec![[0u64; 3]; bins];
        for (t, kind, b) in points {
            let i = ((t - first) / width) as usize;
            records[i][kind] += 1;
            bytes[i][kind] = bytes[i][kind].saturating_add(b);
        }
        Timeline {
            first,
            width,
            records,
            bytes,
            untimed,
        }
    }

    /// The chart as SVG, titled with what was searched for.
    pub fn svg(&self, title: &str) -> String {
        let height = TITLE_HEIGHT + 2.0 * PANEL_HEIGHT + 2.0 * PANEL_GAP + LEGEND_HEIGHT;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let one_line: String = title.split_whitespace().collect::<Vec<_>>().join(" ");
        let title = if one_line.chars().count() > MAX_TITLE_CHARS {
            format!("{}…", one_line.chars().take(MAX_TITLE_CHARS).collect::<String>())
        } else {
            one_line
        };
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">Matches of: {}</text>"#,
            escape(&title)
        );
        let total: u64 = self.records.iter().flatten().sum::<u64>() + self.untimed;
        let _ = writeln!(s, r#"<text x="{LEFT}" y="46">{}</text>"#, escape(&self.subtitle(total)));
        if self.records.is_empty() {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle" font-size="14">No matching records with a start time.</text>"#,
                WIDTH / 2.0,
                TITLE_HEIGHT + PANEL_HEIGHT / 2.0
            );
        } else {
            let unit = bin_name(self.width);
            self.panel(
                &mut s,
                TITLE_HEIGHT,
                &format!("Records per {unit}"),
                &self.records,
                |n| n.to_string(),
            );
            self.panel(
                &mut s,
                TITLE_HEIGHT + PANEL_HEIGHT + PANEL_GAP,
                &format!("Bytes per {unit}"),
                &self.bytes,
                human_bytes,
            );
        }
        let legend_y = height - LEGEND_HEIGHT / 2.0;
        for (i, (colour, kind)) in COLOURS.iter().zip(KINDS).enumerate() {
            let x = LEFT + 130.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{legend_y}">{kind}</text>"#,
                legend_y - 10.0,
                x + 18.0
            );
        }
        s.push_str("</svg>\n");
        s
    }

    fn subtitle(&self, total: u64) -> String {
        let mut text = format!("{total} records");
        if !self.records.is_empty() {
            let end = self.first + self.width * self.records.len() as u64;
            let _ = write!(
                text,
                " from {} to {} (UTC), in bins of {}",
                format_rfc3339(self.first as i64),
                format_rfc3339(end as i64),
                bin_name(self.width)
            );
        }
        if self.untimed > 0 {
            let _ = write!(text, "; {} without a start time are not drawn", self.untimed);
        }
        text
    }

    /// One stacked bar chart with its y axis (0 and a round maximum) and UTC x labels.
    fn panel(&self, s: &mut String, top: f64, title: &str, bins: &[[u64; 3]], label: impl Fn(u64) -> String) {
        let plot_width = WIDTH - LEFT - RIGHT;
        let bottom = top + PANEL_HEIGHT;
        let peak = bins.iter().map(|b| b.iter().sum::<u64>()).max().unwrap_or(0);
        let scale_max = round_up(peak.max(1));
        let bar = plot_width / bins.len() as f64;
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{}" font-weight="bold">{title}</text>"#,
            top + 4.0
        );
        let plot_top = top + 14.0;
        let plot_height = bottom - plot_top;
        let mut ticks = vec![0, scale_max / 2, scale_max];
        ticks.dedup();
        for value in ticks {
            // Integer halves of 5 and 1 are not halfway up: place each tick at its own value.
            let y = bottom - plot_height * value as f64 / scale_max as f64;
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                escape(&label(value))
            );
        }
        for (i, counts) in bins.iter().enumerate() {
            let x = LEFT + bar * i as f64;
            let mut y = bottom;
            for (kind, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
                let h = plot_height * n as f64 / scale_max as f64;
                y -= h;
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {} {}</title></rect>"#,
                    (bar - 1.0).max(0.5),
                    COLOURS[kind],
                    format_rfc3339((self.first + self.width * i as u64) as i64),
                    escape(&label(n)),
                    KINDS[kind]
                );
            }
        }
        let every = (bins.len() as u64).div_ceil(MAX_X_LABELS).max(1) as usize;
        for i in (0..bins.len()).step_by(every) {
            let x = LEFT + bar * i as f64;
            let t = format_rfc3339((self.first + self.width * i as u64) as i64);
            let text = if self.width.is_multiple_of(86_400) {
                t[..10].to_owned()
            } else {
                format!("{} {}", &t[..10], &t[11..16])
            };
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="#555"/><text x="{x:.1}" y="{:.1}">{text}</text>"##,
                bottom + 5.0,
                bottom + 18.0
            );
        }
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}" stroke="#555"/>"##,
            WIDTH - RIGHT
        );
    }
}

/// The smallest 1, 2 or 5 times a power of ten that is at least `n`, so the axis reads well.
fn round_up(n: u64) -> u64 {
    let mut power = 1u64;
    loop {
        for step in [1, 2, 5] {
            let candidate = step * power;
            if candidate >= n {
                return candidate;
            }
        }
        match power.checked_mul(10) {
            Some(p) => power = p,
            None => return n,
        }
    }
}

fn bin_name(width: u64) -> String {
    let (n, unit) = if width.is_multiple_of(86_400) {
        (width / 86_400, "day")
    } else if width.is_multiple_of(3600) {
        (width / 3600, "hour")
    } else {
        (width / 60, "minute")
    };
    if n == 1 {
        unit.to_owned()
    } else {
        format!("{n} {unit}s")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(start: u64, action: Option<Action>, bytes: u64) -> FlowRecord {
        FlowRecord {
            start: Some(start),
            action,
            bytes: Some(bytes),
            ..FlowRecord::default()
        }
    }

    #[test]
    fn bins_are_the_smallest_width_that_fits_and_count_each_kind() {
        let day = 1_711_929_600; // 2024-04-01T00:00:00Z
        let records = [
            record(day + 10, Some(Action::Accept), 100),
            record(day + 20, Some(Action::Reject), 5),
            record(day + 7200, None, 1),
            FlowRecord::default(),
        ];
        let t = Timeline::of(&records);
        assert_eq!((t.first, t.width, t.untimed), (day, 60, 1));
        assert_eq!(t.records.len(), 121);
        assert_eq!(t.records[0], [1, 1, 0]);
        assert_eq!(t.bytes[0], [100, 5, 0]);
        assert_eq!(t.records[120], [0, 0, 1]);
        let month = Timeline::of(&[record(day, None, 0), record(day + 30 * 86_400, None, 0)]);
        assert_eq!(month.width, 6 * 3600);
    }

    #[test]
    fn the_chart_escapes_the_query_and_says_when_nothing_matched() {
        let empty = Timeline::of(&[]).svg("addr = <x> & \"y\"");
        assert!(empty.contains("addr = &lt;x&gt; &amp; &quot;y&quot;"), "{empty}");
        assert!(empty.contains("No matching records"));
        assert!(empty.starts_with("<svg") && empty.ends_with("</svg>\n"));
    }

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!([1, 3, 7, 10, 11, 4999].map(round_up), [1, 5, 10, 10, 20, 5000]);
    }
}
