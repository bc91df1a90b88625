//! `xgroup top <stream>`: a live view refreshed every `--interval`: the
//! stream's length and rate in, each group's rate out, lag and pending,
//! the selected group's lag and pending as sparklines and its consumers
//! with their pending counts and liveness.
//!
//! `q`, `Esc` or `Ctrl-C` quits (so do SIGINT and SIGTERM); `Tab` and the
//! arrow keys switch groups. The terminal is restored on every way out: a
//! normal exit, an error, a signal, and a panic (ratatui's panic hook).
//!
//! [`sample`] reads the server, [`TopState`] keeps the history and
//! [`render`] draws one frame of it (any ratatui backend, so tests draw
//! into a `TestBackend`).

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use xgroup_blocking::TlsOptions;

use crate::cli::TopArgs;
use crate::describe::{self, ConsumerReport, LagSource};
use crate::error::CliError;
use crate::redis::{Liveness, Redis};
use crate::text::{datetime_ms, human_ms, redact_url};

/// Samples kept (the sparklines show the last ones that fit).
pub const HISTORY: usize = 300;
/// How far `top` counts entries for a lag the server does not give.
pub const LAG_CAP: u64 = 10_000;

/// One reading of the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The server's clock, Unix milliseconds.
    pub at_ms: u64,
    /// Entries in the stream.
    pub length: u64,
    /// Entries ever added (Redis 7+), for the rate in.
    pub entries_added: Option<u64>,
    /// The groups.
    pub groups: Vec<GroupSample>,
}

/// One group in a [`Sample`].
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSample {
    /// Name.
    pub name: String,
    /// Lag, and whether it is exact (false: at least this much).
    pub lag: u64,
    /// Whether `lag` is exact.
    pub lag_exact: bool,
    /// Entries read (Redis 7+), for the rate out.
    pub entries_read: Option<u64>,
    /// Pending entries.
    pub pending: u64,
    /// Consumers.
    pub consumers: Vec<ConsumerReport>,
}

/// Reads one [`Sample`].
pub fn sample(redis: &mut Redis, stream: &str) -> Result<Sample, CliError> {
    redis.require_stream(stream)?;
    let at_ms = redis.now_ms()?;
    let info = redis.stream_info(stream)?;
    let mut groups = Vec::new();
    for g in redis.groups(stream)? {
        let (lag, source) = describe::lag(redis, stream, &g, LAG_CAP)?;
        let consumers = describe::consumers(redis, stream, &g.name)?;
        groups.push(GroupSample {
            name: g.name,
            lag,
            lag_exact: source != LagSource::AtLeast,
            entries_read: g.entries_read,
            pending: g.pending,
            consumers,
        });
    }
    Ok(Sample {
        at_ms,
        length: info.length,
        entries_added: info.entries_added,
        groups,
    })
}

/// What `top` shows: the samples so far and the selected group.
#[derive(Debug, Clone)]
pub struct TopState {
    /// Stream key.
    pub stream: String,
    /// The server, as shown (no password).
    pub server: String,
    /// Refresh interval, as shown.
    pub interval: Duration,
    samples: VecDeque<Sample>,
    selected: Option<String>,
    error: Option<String>,
}

impl TopState {
    /// A view of `stream` on `server` (`group` selected first, if given).
    pub fn new(stream: &str, server: &str, interval: Duration, group: Option<&str>) -> Self {
        TopState {
            stream: stream.to_owned(),
            server: redact_url(server),
            interval,
            samples: VecDeque::new(),
            selected: group.map(str::to_owned),
            error: None,
        }
    }

    /// Adds a sample (and clears the last error).
    pub fn push(&mut self, sample: Sample) {
        if self.samples.len() == HISTORY {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        self.error = None;
    }

    /// A failed refresh: shown until the next sample.
    pub fn set_error(&mut self, error: String) {
        self.error = Some(error);
    }

    /// The latest sample.
    pub fn latest(&self) -> Option<&Sample> {
        self.samples.back()
    }

    fn last_two(&self) -> Option<(&Sample, &Sample)> {
        let n = self.samples.len();
        if n < 2 {
            return None;
        }
        Some((&self.samples[n - 2], &self.samples[n - 1]))
    }

    /// Entries added per second over the last interval (Redis 7+).
    pub fn rate_in(&self) -> Option<f64> {
        let (a, b) = self.last_two()?;
        per_second(a.entries_added?, b.entries_added?, a.at_ms, b.at_ms)
    }

    /// Entries read by `group` per second over the last interval (Redis 7+).
    pub fn rate_out(&self, group: &str) -> Option<f64> {
        let (a, b) = self.last_two()?;
        let read = |s: &Sample| s.groups.iter().find(|g| g.name == group)?.entries_read;
        per_second(read(a)?, read(b)?, a.at_ms, b.at_ms)
    }

    /// The selected group in the latest sample (the first one if the
    /// selected one is gone).
    pub fn selected_group(&self) -> Option<&GroupSample> {
        let groups = &self.latest()?.groups;
        self.selected
            .as_ref()
            .and_then(|name| groups.iter().find(|g| &g.name == name))
            .or_else(|| groups.first())
    }

    /// Selects the next (`step` 1) or previous (`step` -1) group.
    pub fn select(&mut self, step: isize) {
        let Some(latest) = self.latest() else { return };
        let n = latest.groups.len();
        if n == 0 {
            return;
        }
        let at = self
            .selected_group()
            .and_then(|g| latest.groups.iter().position(|x| x.name == g.name))
            .unwrap_or(0);
        let next = (at as isize + step).rem_euclid(n as isize) as usize;
        self.selected = Some(latest.groups[next].name.clone());
    }

    /// A group's values over the samples kept (0 where it was missing).
    pub fn series(&self, group: &str, value: impl Fn(&GroupSample) -> u64) -> Vec<u64> {
        self.samples
            .iter()
            .map(|s| s.groups.iter().find(|g| g.name == group).map_or(0, &value))
            .collect()
    }
}

fn per_second(from: u64, to: u64, from_ms: u64, to_ms: u64) -> Option<f64> {
    let dt = to_ms.checked_sub(from_ms).filter(|dt| *dt > 0)? as f64 / 1000.0;
    Some(to.checked_sub(from)? as f64 / dt)
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}/s"))
}

fn lag_text(g: &GroupSample) -> String {
    if g.lag_exact {
        g.lag.to_string()
    } else {
        format!(">={}", g.lag)
    }
}

/// Draws one frame of `state`.
pub fn render(frame: &mut Frame<'_>, state: &TopState) {
    let area = frame.area();
    let groups = state.latest().map_or(0, |s| s.groups.len()) as u16;
    let [title, summary, groups_area, sparks, consumers_area, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(groups.clamp(1, 6) + 3),
        Constraint::Length(7),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);

    let clock = state
        .latest()
        .map(|s| datetime_ms(s.at_ms))
        .map(|t| format!("{} UTC", &t[11..19.min(t.len())]))
        .unwrap_or_default();
    let bold = Style::default().add_modifier(Modifier::BOLD);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" xgroup top ", bold.fg(Color::Black).bg(Color::Cyan)),
            Span::raw(" "),
            Span::styled(state.stream.clone(), bold),
            Span::raw(format!("  {}  {clock}", state.server)),
        ])),
        title,
    );

    let summary_line = match (state.latest(), &state.error) {
        (_, Some(e)) => Line::from(Span::styled(
            format!(" error: {e} (retrying)"),
            Style::default().fg(Color::Red),
        )),
        (Some(s), None) => Line::from(format!(
            " length {}   in {}   groups {}",
            s.length,
            rate(state.rate_in()),
            s.groups.len()
        )),
        (None, None) => Line::from(" reading..."),
    };
    frame.render_widget(Paragraph::new(summary_line), summary);

    // Groups.
    let selected = state.selected_group().map(|g| g.name.clone());
    let rows: Vec<Row> = state
        .latest()
        .map(|s| s.groups.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|g| {
            let alive = g
                .consumers
                .iter()
                .filter(|c| c.state == Liveness::Alive)
                .count();
            let mark = if Some(&g.name) == selected.as_ref() {
                ">"
            } else {
                " "
            };
            let row = Row::new(vec![
                format!("{mark} {}", g.name),
                rate(state.rate_out(&g.name)),
                lag_text(g),
                g.pending.to_string(),
                format!("{alive}/{}", g.consumers.len()),
            ]);
            if Some(&g.name) == selected.as_ref() {
                row.style(bold)
            } else {
                row
            }
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Min(16),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
        ],
    )
    .header(Row::new(vec!["  GROUP", "OUT", "LAG", "PENDING", "ALIVE"]).style(bold))
    .block(Block::default().borders(Borders::ALL).title(" groups "));
    frame.render_widget(table, groups_area);
    if empty {
        let inner = Rect {
            x: groups_area.x + 2,
            y: groups_area.y + 2,
            width: groups_area.width.saturating_sub(4),
            height: 1,
        };
        frame.render_widget(Paragraph::new("(no groups)"), inner);
    }

    // Sparklines of the selected group.
    let [lag_area, pending_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(sparks);
    let (name, lag_now, pending_now) = match state.selected_group() {
        Some(g) => (g.name.clone(), lag_text(g), g.pending.to_string()),
        None => (String::new(), "-".into(), "-".into()),
    };
    for (area, label, now, color, pick) in [
        (lag_area, "lag", lag_now, Color::Yellow, 0),
        (pending_area, "pending", pending_now, Color::Magenta, 1),
    ] {
        let series = state.series(&name, |g| if pick == 0 { g.lag } else { g.pending });
        let width = area.width.saturating_sub(2) as usize;
        let shown = &series[series.len().saturating_sub(width)..];
        frame.render_widget(
            Sparkline::default()
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(format!(" {label} {name}: {now} ")),
                )
                .data(shown)
                .style(Style::default().fg(color)),
            area,
        );
    }

    // Consumers of the selected group.
    let mut consumers: Vec<Row> = Vec::new();
    if let Some(g) = state.selected_group() {
        for c in &g.consumers {
            let color = match c.state {
                Liveness::Alive => Color::Green,
                Liveness::Dead => Color::Red,
                Liveness::Released => Color::Yellow,
            };
            consumers.push(Row::new(vec![
                ratatui::text::Text::raw(c.name.clone()),
                ratatui::text::Text::styled(c.state.as_str(), Style::default().fg(color)),
                ratatui::text::Text::raw(c.pending.to_string()),
                ratatui::text::Text::raw(human_ms(c.idle_ms)),
                ratatui::text::Text::raw(c.inactive_ms.map_or_else(|| "-".to_owned(), human_ms)),
            ]));
        }
    }
    let table = Table::new(
        consumers,
        [
            Constraint::Min(16),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
        ],
    )
    .header(Row::new(vec!["CONSUMER", "STATE", "PENDING", "IDLE", "INACTIVE"]).style(bold))
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" consumers {name} ")),
    );
    frame.render_widget(table, consumers_area);

    frame.render_widget(
        Paragraph::new(format!(
            " q quit   tab next group   refresh {}",
            human_interval(state.interval)
        ))
        .style(Style::default().fg(Color::DarkGray)),
        help,
    );
}

fn human_interval(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Runs `top` until `q`, `Esc`, `Ctrl-C`, SIGINT or SIGTERM.
pub fn run(url: &str, tls: Option<TlsOptions>, args: &TopArgs) -> Result<(), CliError> {
    if args.interval < Duration::from_millis(100) {
        crate::fail!("--interval must be at least 100ms");
    }
    let mut redis = Redis::connect(url, tls)?;
    if let Some(g) = &args.group {
        redis.require_stream(&args.stream)?;
        redis.group(&args.stream, g)?;
    }
    let first = sample(&mut redis, &args.stream)?;
    if !std::io::stdout().is_terminal() {
        crate::fail!(
            "top needs a terminal (standard output is not one); see describe --json for scripts"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| CliError::new(format!("cannot handle signals: {e}")))?;
    }
    let mut state = TopState::new(&args.stream, url, args.interval, args.group.as_deref());
    state.push(first);
    // Installs a panic hook that restores the terminal first.
    let mut terminal = ratatui::try_init()
        .map_err(|e| CliError::new(format!("cannot set up the terminal: {e}")))?;
    let result = event_loop(&mut terminal, &mut redis, &mut state, args.interval, &stop);
    ratatui::restore();
    result
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    redis: &mut Redis,
    state: &mut TopState,
    interval: Duration,
    stop: &AtomicBool,
) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::new(format!("terminal: {e}"));
    let mut next = Instant::now() + interval;
    loop {
        terminal.draw(|f| render(f, state)).map_err(io)?;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= next {
                break;
            }
            let wait = (next - now).min(Duration::from_millis(100));
            if !event::poll(wait).map_err(io)? {
                continue;
            }
            match event::read().map_err(io)? {
                Event::Key(key) if key.kind != KeyEventKind::Release => match key.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                        return Ok(())
                    }
                    KeyCode::Tab | KeyCode::Right | KeyCode::Down => {
                        state.select(1);
                        terminal.draw(|f| render(f, state)).map_err(io)?;
                    }
                    KeyCode::BackTab | KeyCode::Left | KeyCode::Up => {
                        state.select(-1);
                        terminal.draw(|f| render(f, state)).map_err(io)?;
                    }
                    _ => {}
                },
                Event::Resize(..) => {
                    terminal.draw(|f| render(f, state)).map_err(io)?;
                }
                _ => {}
            }
        }
        next = Instant::now() + interval;
        match sample(redis, &state.stream) {
            Ok(s) => state.push(s),
            Err(e) => state.set_error(e.to_string()),
        }
    }
}
