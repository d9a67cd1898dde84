//! A server-rendered SVG bar chart of tokens per day (no script, no library): the usage page's
//! picture. Every text in it comes from numbers and dates, escaped anyway.

use loquat_core::service::UsageLine;

/// Bars of prompt + completion tokens for each of the last `days` days (UTC), oldest first.
pub fn daily_tokens(lines: &[UsageLine], days: u32) -> String {
    let days = days.clamp(1, 366) as usize;
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let labels: Vec<String> = (0..days)
        .rev()
        .map(|back| today.checked_sub(jiff::Span::new().days(back as i64)).map(|d| d.to_string()).unwrap_or_default())
        .collect();
    let values: Vec<u64> = labels
        .iter()
        .map(|day| {
            lines
                .iter()
                .filter(|line| &line.row.key == day)
                .map(|line| line.row.prompt_tokens + line.row.completion_tokens)
                .sum()
        })
        .collect();
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let (width, height, left, bottom) = (720.0, 220.0, 44.0, 24.0);
    let slot = (width - left) / days as f64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"tokens per day\" \
         xmlns=\"http://www.w3.org/2000/svg\"><line class=\"axis\" x1=\"{left}\" y1=\"{y}\" x2=\"{width}\" y2=\"{y}\"/>\
         <text x=\"0\" y=\"12\">{max}</text><text x=\"0\" y=\"{y}\">0</text>",
        y = height - bottom,
    );
    for (index, value) in values.iter().enumerate() {
        let bar = (*value as f64 / max as f64) * (height - bottom - 16.0);
        let x = left + index as f64 * slot + slot * 0.15;
        svg.push_str(&format!(
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar:.1}\"><title>{}: {value}</title></rect>",
            height - bottom - bar,
            slot * 0.7,
            escape(&labels[index]),
        ));
    }
    let step = (days / 6).max(1);
    for index in (0..days).step_by(step) {
        let x = left + index as f64 * slot;
        let label = labels[index].get(5..).unwrap_or_default();
        svg.push_str(&format!("<text x=\"{x:.1}\" y=\"{:.1}\">{}</text>", height - 6.0, escape(label)));
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use loquat_core::domain::UsageRow;

    use super::*;

    #[test]
    fn draws_one_bar_per_day_with_todays_value() {
        let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
        let line = UsageLine {
            row: UsageRow {
                key: today.clone(),
                provider: String::new(),
                model: String::new(),
                requests: 2,
                prompt_tokens: 30,
                completion_tokens: 12,
                reasoning_tokens: 0,
            },
            cost: None,
        };
        let svg = daily_tokens(&[line], 7);
        assert_eq!(svg.matches("<rect").count(), 7);
        assert!(svg.contains(&format!("{today}: 42")));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
