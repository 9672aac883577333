//! [`Renderer`]: how `servio logs` prints a record.
//!
//! One service with one instance in the output: the bare message. Otherwise every line is
//! prefixed `instance-id | `, padded to the longest instance id seen so far. With colour (a
//! TTY without NO_COLOR) each instance gets its own colour, in order of first appearance so
//! that a handful of instances never share one, and stderr lines get a red `|`;
//! `--timestamps` puts the RFC 3339 time first. stderr lines otherwise look like stdout lines.

use std::collections::HashMap;

use super::format::format_time;
use super::{LogRecord, Stream};
use crate::term::paint;

/// ANSI colours for instance prefixes; red is kept for stderr.
const PALETTE: [&str; 10] = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

/// Turns records into output lines, deciding prefixes from what has been shown.
#[derive(Debug, Clone)]
pub struct Renderer {
    color: bool,
    timestamps: bool,
    /// Prefix every line with its instance id.
    prefixed: bool,
    /// The only instance seen while not prefixed.
    only_instance: Option<String>,
    /// Width of the instance column, in characters.
    width: usize,
    /// Palette index of every instance seen, by first appearance.
    colors: HashMap<String, usize>,
}

impl Renderer {
    /// `several_services`: more than one service is shown, so lines are always prefixed.
    pub fn new(color: bool, timestamps: bool, several_services: bool) -> Self {
        Renderer {
            color,
            timestamps,
            prefixed: several_services,
            only_instance: None,
            width: 0,
            colors: HashMap::new(),
        }
    }

    /// Takes note of records about to be rendered: a second instance turns prefixes on (for
    /// good), a longer instance id widens the column. Call it on a whole batch first so the
    /// batch lines up.
    pub fn observe(&mut self, records: &[LogRecord]) {
        for record in records {
            self.width = self.width.max(record.instance.chars().count());
            let next = self.colors.len();
            self.colors.entry(record.instance.clone()).or_insert(next);
            match &self.only_instance {
                None => self.only_instance = Some(record.instance.clone()),
                Some(only) if *only != record.instance => self.prefixed = true,
                Some(_) => {}
            }
        }
    }

    /// The output line for `record`, newline included.
    pub fn render(&self, record: &LogRecord) -> String {
        let mut line = String::with_capacity(record.message.len() + self.width + 40);
        if self.timestamps {
            line.push_str(&paint(self.color, "2", &format_time(record.timestamp)));
            line.push(' ');
        }
        if self.prefixed {
            let id = format!("{:<width$}", record.instance, width = self.width);
            line.push_str(&paint(
                self.color,
                self.instance_color(&record.instance),
                &id,
            ));
            let bar_color = if record.stream == Stream::Err {
                "31"
            } else {
                "2"
            };
            line.push(' ');
            line.push_str(&paint(self.color, bar_color, "|"));
            line.push(' ');
        }
        line.push_str(&record.message);
        line.push('\n');
        line
    }

    /// The colour of `instance`: its place among the instances observed (the first colour
    /// for one never observed).
    fn instance_color(&self, instance: &str) -> &'static str {
        let index = self.colors.get(instance).copied().unwrap_or(0);
        PALETTE[index % PALETTE.len()]
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn rec(instance: &str, stream: Stream, message: &str) -> LogRecord {
        LogRecord {
            timestamp: UNIX_EPOCH + Duration::from_millis(1500),
            instance: instance.to_string(),
            stream,
            message: message.to_string(),
        }
    }

    fn render_all(mut renderer: Renderer, records: &[LogRecord]) -> String {
        renderer.observe(records);
        records.iter().map(|r| renderer.render(r)).collect()
    }

    #[test]
    fn renders_plain_output() {
        let web1 = rec("web-1", Stream::Out, "hello");
        let web1_err = rec("web-1", Stream::Err, "oops");
        let web12 = rec("web-12", Stream::Out, "hi");
        let cases: &[(bool, bool, &[&LogRecord], &str)] = &[
            (false, false, &[&web1, &web1_err], "hello\noops\n"),
            (true, false, &[&web1], "web-1 | hello\n"),
            (
                false,
                false,
                &[&web1, &web12],
                "web-1  | hello\nweb-12 | hi\n",
            ),
            (false, true, &[&web1], "1970-01-01T00:00:01.500000Z hello\n"),
            (
                true,
                true,
                &[&web1_err],
                "1970-01-01T00:00:01.500000Z web-1 | oops\n",
            ),
            (false, false, &[], ""),
        ];
        for (i, (several, timestamps, records, expected)) in cases.iter().enumerate() {
            let records: Vec<LogRecord> = records.iter().map(|r| (*r).clone()).collect();
            let renderer = Renderer::new(false, *timestamps, *several);
            assert_eq!(render_all(renderer, &records), *expected, "case {i}");
        }
    }

    #[test]
    fn a_second_instance_turns_prefixes_on() {
        let mut renderer = Renderer::new(false, false, false);
        let first = [rec("web-1", Stream::Out, "a")];
        renderer.observe(&first);
        assert_eq!(renderer.render(&first[0]), "a\n");
        let later = [rec("web-10", Stream::Out, "b")];
        renderer.observe(&later);
        assert_eq!(renderer.render(&later[0]), "web-10 | b\n");
        assert_eq!(renderer.render(&first[0]), "web-1  | a\n");
    }

    #[test]
    fn colours_only_when_asked() {
        let records = [
            rec("web-1", Stream::Err, "x"),
            rec("api-1", Stream::Out, "y"),
        ];
        let coloured = render_all(Renderer::new(true, true, true), &records);
        assert!(coloured.contains("\x1b[31m|\x1b[0m"), "{coloured:?}");
        assert!(coloured.contains(&format!("\x1b[{}mweb-1\x1b[0m", PALETTE[0])));
        assert!(coloured.contains(&format!("\x1b[{}mapi-1\x1b[0m", PALETTE[1])));
        assert!(coloured.contains("\x1b[2m1970-"));
        let plain = render_all(Renderer::new(false, true, true), &records);
        assert!(!plain.contains('\x1b'));
    }
}
