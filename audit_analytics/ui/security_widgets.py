"""The Security review page's pieces: cached results, charts, threshold controls, tables.

The page reads the shared view (period, users, search) and reviews it the way the users'
guide says: login failures by IP, by account and by hour; then one table per detection of
:data:`audit_analytics.analysis.security.DETECTIONS`, each with its thresholds as controls; then a
backtest of every rule per day. Every chart bar and table row opens the Audit Log on exactly
the events behind it.

Derived results are cached in a small dict on the shared frame, keyed by plain values
(frame version, filter, time bounds, thresholds), never by hashing a frame; so a rerun after
moving one threshold recomputes that one detection only.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import available_timezones

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from audit_analytics.analysis import activity, security
from audit_analytics.analysis.review import SecurityReview, security_review
from audit_analytics.dates import zone
from audit_analytics.errors import DetectionError, NeedsMemory
from audit_analytics.filters import Filter, Period
from audit_analytics.query import Qualified
from audit_analytics.schema import PERMISSION
from audit_analytics.ui import charts, common
from audit_analytics.ui.data import SharedFrame, cached
from audit_analytics.ui.state import open_explorer, open_explorer_link
from audit_analytics.view import View, explorer_link

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_VIEW",
    "RULE_ORDER",
    "backtest_chart",
    "detect_ahead",
    "detection",
    "failure_charts",
    "headline",
    "review",
]

DEFAULT_VIEW = View(filter=Filter(period="7d"))
"""What the page opens on without a URL: the last 7 days. (Not narrowed to failed auth events:
the page does not apply Type and Result, and the Audit Log opened next would keep them.)"""

TOP_CHOICES = (5, 10, 20, 50)
DEFAULT_TOP = 10  # the page's "Top" control starts here
SHOWN_ROWS = 50  # a table shows its newest findings, the rest on asking; its title counts all
MAX_TABLE_ROWS = 500  # the most a table shows when asked for more
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LOGIN_QUERY = "action:login"

# the most urgent first: a guessed password is an intrusion, not an attempt
RULE_ORDER: tuple[str, ...] = (
    "success_after_failures",
    "brute_force",
    "password_spray",
    "account_under_attack",
    "denied_calls",
    "off_hours",
    "permission_changes",
    "stuck_operations",
)

# timedelta thresholds are edited as a whole number of this unit
DURATION_UNITS: dict[str, tuple[str, int]] = {
    "window": ("seconds", 1),
    "within": ("minutes", 60),
    "lookback": ("days", 86_400),
    "older_than": ("minutes", 60),
}
THRESHOLD_LABELS: dict[str, str] = {
    "threshold": "Failures",
    "min_accounts": "Distinct accounts",
    "min_ips": "Distinct IPs",
    "window": "Window",
    "within": "Within",
    "by": "Same",
    "hours": "Working hours",
    "weekdays": "Working days",
    "org_tz": "Organisation time zone",
    "lookback": "History",
    "min_history": "Events before habits count",
    "service_accounts": "Service accounts (pattern)",
    "older_than": "Older than",
}
ORGANISATION = ("org_tz", "hours", "weekdays")
"""Settings of the organisation rather than of a rule: the Security review's sidebar holds them."""
RULE_LABELS: dict[tuple[str, str], str] = {("denied_calls", "threshold"): "Refusals"}
"""A threshold's label where one rule means something else by it."""
THRESHOLD_HELP: dict[str, str] = {
    "threshold": "A finding needs at least this many failures (refusals, for denied calls) inside one window.",
    "min_accounts": "A finding needs failures against at least this many different accounts in one window.",
    "min_ips": "A finding needs failures from at least this many different IPs in one window.",
    "window": "Windows are half-open: two failures exactly one window apart are not in the same window.",
    "within": "Failures count when they happened at most this long before the success.",
    "by": "Count failures of the same account, the same IP, or the same account from the same IP.",
    "lookback": "An actor's usual hours (and, for permission changes, whether they granted before) "
    "are learnt from this much history before each event.",
    "min_history": "Actors with fewer events in the history are judged by the working hours instead.",
    "service_accounts": "A regular expression for the names of service accounts: they are judged by "
    "their own hours, never by office hours (accounts active around the clock are recognised too).",
    "hours": "A person's event outside these hours is flagged when the hour is also unusual for them.",
    "older_than": "Operations still pending or processing after this long.",
}


# ---------------------------------------------------------------------------------------
# the review: audit_analytics.analysis.review, cached in the shared data's results


def memo(shared: SharedFrame, key: tuple[Hashable, ...], compute: Callable[[], Any]) -> Any:
    """``compute()`` once per ``key`` and version of the data, shared by every session
    (:func:`audit_analytics.ui.data.cached`)."""
    return cached(shared, ("security", *key), compute)


RULE_TITLES: dict[str, str] = {rule: d.title for rule, d in security.DETECTIONS.items()}


@dataclasses.dataclass
class Review(SecurityReview):
    """The package's :class:`~audit_analytics.analysis.review.SecurityReview` plus the page's view
    (its links into the explorer keep the view's time-zone choice)."""

    view: View = dataclasses.field(default_factory=View)


def review(shared: SharedFrame, view: View, *, now: datetime | None = None) -> Review:
    """The page's review of ``view``: its period, users and search, over every type and result
    (the failure charts pick the login failures themselves; the detections need the rest)."""
    base = security_review(
        shared.index, view.filter, now=now, memo=lambda key, compute: cached(shared, key, compute)
    )
    return Review(base.engine, base.filter, base.now, base.memo, base.policy, view=view)


# ---------------------------------------------------------------------------------------
# links into the explorer


def _explorer_view(review: Review, **changes: Any) -> View:
    """An explorer view over the reviewed events, narrowed by ``changes``."""
    return View(filter=review.filter.replace(**changes), utc=review.view.utc)


def _finding_view(review: Review, first: datetime, last: datetime, **changes: Any) -> View:
    """Exactly the span of a finding: [first, last] as a custom period of instants."""
    tz = zone(review.tz)
    return _explorer_view(
        review,
        period="custom",
        start=first.astimezone(tz),
        end=(last + timedelta(microseconds=1)).astimezone(tz),
        **changes,
    )


def _qualified(field: str, value: str) -> str:
    return str(Qualified(field, value, written=field))


def _login_query(review: Review, *terms: str) -> str:
    return " ".join(t for t in (review.filter.query.strip(), LOGIN_QUERY, *terms) if t)


def _event_link(event_id: str | None) -> str | None:
    return explorer_link(View(filter=Filter(period="all"), event=event_id)) if event_id else None


def drill_target(review: Review, changes: dict[str, Any]) -> View | None:
    """The explorer view for a clicked chart point (its drill dict, see :func:`charts.drill`)."""
    kind = changes.get("kind")
    failed = {"types": ("auth",), "results": ("failed",)}
    if kind == "ip":
        return _explorer_view(review, **failed, query=_login_query(review, _qualified("ip", changes["ip"])))
    if kind == "account":
        return _explorer_view(
            review, **failed, query=_login_query(review, _qualified("user", changes["account"]))
        )
    if kind in ("hour", "bucket"):
        tz = zone(review.tz)
        start = datetime.fromisoformat(changes["start"]).astimezone(tz)
        end = datetime.fromisoformat(changes["end"]).astimezone(tz)
        lo, hi = review.bounds
        start, end = max(start, lo) if lo else start, min(end, hi) if hi else end
        results = (changes.get("result") or "failed",)
        return _explorer_view(
            review,
            period="custom",
            start=start.astimezone(tz),
            end=end.astimezone(tz),
            types=("auth",),
            results=results,
            query=_login_query(review),
        )
    return None


def _clicked(key: str, fig: go.Figure, review: Review, open_explorer: Callable[[View], None]) -> None:
    changes = charts.clickable(fig, key=key)
    if changes:
        target = drill_target(review, changes)
        if target is not None:
            open_explorer(target)


# ---------------------------------------------------------------------------------------
# headline


def headline(
    review: Review, *, successes_after_failures: int, container: Any = None
) -> security.FailureSummary:
    """The four figures at the top; ``successes_after_failures`` is the count of that table
    (with its current thresholds, so the two never disagree)."""
    summary: security.FailureSummary = review.cached("summary", review.summary)
    with container or st.container():
        c1, c2, c3, c4 = common.wrapping_columns("headline", 4, min_width=common.METRIC_MIN_WIDTH)
    c1.metric("Login failures", f"{summary.failures:,}")
    c2.metric(
        "Distinct IPs",
        f"{summary.distinct_ips:,}",
        help=f"{summary.failures_without_ip:,} failures carry no IP" if summary.failures_without_ip else None,
    )
    c3.metric(
        "Distinct accounts",
        f"{summary.distinct_accounts:,}",
        help=f"{summary.failures_without_account:,} failures name no account"
        if summary.failures_without_account
        else None,
    )
    c4.metric(
        "Successes after failures",
        f"{successes_after_failures:,}",
        help="Successful logins right after a run of failures (see the table below)",
    )
    return summary


# ---------------------------------------------------------------------------------------
# charts


def _ranked(data: pl.DataFrame, *, key: str, other: str, other_name: str, kind: str) -> go.Figure:
    labels = [f"{i}. {charts.escape_label(v, limit=40)}" for i, v in enumerate(data[key].to_list(), start=1)]
    values = data[key].to_list()
    fig = go.Figure(
        go.Bar(
            x=data["failures"].to_list(),
            y=labels,
            orientation="h",
            marker_color=charts.RESULT_COLORS["failed"],
            customdata=[
                [charts.drill(kind=kind, **{kind: v}), charts.escape_label(v), n]
                for v, n in zip(values, data[other].to_list(), strict=True)
            ],
            hovertemplate=f"<b>%{{customdata[1]}}</b><br>%{{x:,}} failures<br>%{{customdata[2]:,}} {other_name}"
            "<extra></extra>",
        )
    )
    fig.update_layout(yaxis={"categoryorder": "array", "categoryarray": labels[::-1]}, showlegend=False)
    return fig


def _heatmap(cells: pl.DataFrame, *, tz: str) -> go.Figure:
    """The weekday x hour grid of login failures (``failures_by_hour``'s cells, each with its
    ``latest`` hour, from whichever engine). A click on a cell opens its most recent hour:
    plotly's selection holds no heatmap cell (a click on one reached the app as an empty
    selection), so an invisible marker at each cell's centre carries its hover and its drill.
    The markers are small and the hover has no cutoff: the centre nearest the pointer is the
    cell's under it, at any width (markers wider than a cell tied with their neighbours)."""
    hours = charts.HOURS
    z, xs, ys, custom = [], [], [], []
    for weekday in range(1, 8):
        row = cells.filter(pl.col("weekday") == weekday)
        counts = row["failures"].to_list()
        z.append(counts)
        for hour, (count, start) in enumerate(zip(counts, row["latest"].to_list(), strict=True)):
            if start is None:
                point = [None, "no failures", count]
            else:
                end = activity.bucket_end(start, "1h")
                drill = charts.drill(kind="hour", start=start.isoformat(), end=end.isoformat())
                point = [drill, f"latest: {start:%Y-%m-%d %H:%M}", count]
            xs.append(hours[hour])
            ys.append(WEEKDAYS[weekday - 1])
            custom.append(point)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(hours),
            y=list(WEEKDAYS),
            colorscale="Reds",
            hoverinfo="skip",
            xgap=1,
            ygap=1,
        )
    )
    invisible = {"marker": {"opacity": 0}}
    fig.add_scatter(
        x=xs,
        y=ys,
        mode="markers",
        marker={"size": 2, "opacity": 0},
        selected=invisible,
        unselected=invisible,
        customdata=custom,
        hovertemplate="%{y} %{x}:00<br>%{customdata[2]:,} failures<br>%{customdata[1]}<extra></extra>",
        showlegend=False,
    )
    fig.update_layout(hoverdistance=-1)
    return charts.weekday_hour_axes(fig, WEEKDAYS, scale="Failures")


def _over_time(data: pl.DataFrame, every: str, tz: str) -> go.Figure:
    fig = go.Figure()
    starts = data["bucket"].to_list()
    when, texts = charts.bucket_hover(starts, every)  # one hover format, not a text per bar
    for column, result, name in (("failures", "failed", "Failures"), ("successes", "done", "Successes")):
        drills = [
            charts.drill(
                kind="bucket",
                result=result,
                start=s.isoformat(),
                end=activity.bucket_end(s, every).isoformat(),
            )
            for s in starts
        ]
        fig.add_bar(
            x=[s.replace(tzinfo=None) for s in starts],
            y=data[column].to_list(),
            name=name,
            marker_color=charts.RESULT_COLORS[result],
            customdata=[[d] for d in drills]
            if texts is None
            else [list(p) for p in zip(drills, texts, strict=True)],
            hovertemplate=f"<b>{name}</b><br>{when}<br>%{{y:,}} logins<extra></extra>",
        )
    fig.update_layout(barmode="group")
    return fig


def _ranked_figure(review: Review, kind: str, top: int) -> tuple[pl.DataFrame, go.Figure]:
    other, other_name, title, y_title = {
        "ip": ("accounts", "accounts", "Login failures by source IP", "Source IP"),
        "account": ("ips", "IPs", "Login failures by account", "Account"),
    }[kind]
    data = review.failures_by(kind, top)
    fig = _ranked(data, key=kind, other=other, other_name=other_name, kind=kind)
    return data, charts.style(fig, title=f"{title} (top {top})", x_title="Failures", y_title=y_title)


def _heat_figure(review: Review) -> tuple[pl.DataFrame, go.Figure]:
    tz = review.tz
    cells = review.failures_by_hour()
    fig = _heatmap(cells, tz=tz)
    charts.style(
        fig,
        title="Login failures by weekday and hour",  # the zone is in the hour axis' title
        x_title=f"Hour of the day ({tz})",
        y_title="Weekday",
    )
    names = pl.col("weekday").replace_strict(dict(enumerate(WEEKDAYS, 1)), return_dtype=pl.String)
    return cells.with_columns(names), fig


def _over_time_figure(review: Review) -> tuple[pl.DataFrame, go.Figure]:
    tz = review.tz
    span = review.span()
    every = activity.choose_bucket(*span) if span else "1d"
    data = review.failures_over_time(every)
    bucket = activity.BUCKETS[every]
    fig = charts.style(
        _over_time(data, every, tz),
        title=f"Login failures and successes per {bucket}",
        x_title=f"{bucket.capitalize()} ({tz})",
        y_title="Logins",
        legend_title="Result",
    )
    return data, fig


def failure_figure(review: Review, name: str, top: int = DEFAULT_TOP) -> tuple[pl.DataFrame, go.Figure]:
    """One login-failure chart (``by_ip``, ``by_account``, ``by_hour``, ``over_time``): its data
    and figure, cached per review (and ``top`` for the ranked two)."""
    if name in ("by_ip", "by_account"):
        kind = name.removeprefix("by_")
        result: tuple[pl.DataFrame, go.Figure] = review.cached(
            name, lambda: _ranked_figure(review, kind, top), top
        )
    elif name == "by_hour":
        result = review.cached(name, lambda: _heat_figure(review))
    else:
        result = review.cached("over_time", lambda: _over_time_figure(review))
    return result


def failure_charts(review: Review, *, open_explorer: Callable[[View], None], top: int) -> None:
    """Failures by IP and by account (top N), by weekday and hour, and over time. Data and
    figures are cached: a rerun after a threshold change only redraws them."""
    left, right = charts.chart_pair("failures-by")
    with left:
        data, fig = failure_figure(review, "by_ip", top)
        _clicked("chart_by_ip", fig, review, open_explorer)
        charts.download_chart_data(data, key="download_by_ip", file_name="failures-by-ip.csv")
    with right:
        data, fig = failure_figure(review, "by_account", top)
        _clicked("chart_by_account", fig, review, open_explorer)
        charts.download_chart_data(data, key="download_by_account", file_name="failures-by-account.csv")
    data, fig = failure_figure(review, "by_hour")
    _clicked("chart_by_hour", fig, review, open_explorer)
    st.caption("Click a cell to open the most recent hour of that weekday and hour that holds failures.")
    charts.download_chart_data(data, key="download_by_hour", file_name="failures-by-weekday-hour.csv")
    data, fig = failure_figure(review, "over_time")
    _clicked("chart_over_time", fig, review, open_explorer)
    charts.download_chart_data(data, key="download_over_time", file_name="logins-over-time.csv")


# ---------------------------------------------------------------------------------------
# thresholds


def _widget_key(rule: str, name: str) -> str:
    return f"th_{rule}_{name}"


def threshold_defaults(
    rule: str, *, tz: str = "UTC", policy: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The thresholds of ``rule`` as :func:`threshold_controls` returns them before anyone
    touches a control: the organisation's ``policy``, else the registry's defaults, rounded to
    the controls' steps (a duration to its unit); the organisation's zone defaults to ``tz``."""
    defaults = security.DETECTIONS[rule].defaults
    values: dict[str, Any] = {}
    for f in dataclasses.fields(defaults):
        name = f.name
        if name == "now":
            continue
        default = (policy or {}).get(name, getattr(defaults, name))
        if isinstance(default, timedelta):
            seconds = DURATION_UNITS.get(name, ("seconds", 1))[1]
            values[name] = timedelta(seconds=int(default.total_seconds() // seconds) * seconds)
        elif name == "hours":
            values[name] = tuple(time.fromisoformat(v).strftime("%H:%M") for v in default)
        elif name == "weekdays":
            values[name] = tuple(sorted(default))
        elif name == "org_tz":
            values[name] = default or tz
        elif name == "by":
            values[name] = default if default in BY_CHOICES else BY_CHOICES[0]
        else:
            values[name] = int(default) if isinstance(default, int) else default
    return values


BY_CHOICES = ("account", "ip", "both")

ORG_TZ_NOT_SET = (
    "The security policy names no zone, so this starts at the zone the page shows (yours): set "
    "`org_tz` under `[off-hours]` in the policy (AUDIT_SECURITY_POLICY) so that every reviewer "
    "judges the same hours."
)


KEPT_THRESHOLDS = "kept_thresholds"
"""Session state: each threshold control's value (by its key) as the user left it. Streamlit
drops a control's state when its page is left; the controls start from these on the way back
(a reviewer who opened a finding in the Audit Log came back to the shipped thresholds)."""


def restore_thresholds() -> None:
    """Put back the thresholds kept from an earlier visit (before anything reads them:
    :func:`detect_ahead` and the controls)."""
    for key, value in st.session_state.get(KEPT_THRESHOLDS, {}).items():
        if key not in st.session_state:
            st.session_state[key] = value


def threshold_controls(
    rule: str, *, tz: str = "UTC", policy: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One keyed control per threshold of ``rule``, starting at :func:`threshold_defaults`
    (or where the user left it, :func:`restore_thresholds`); returns the values as the
    detection takes them."""
    start = threshold_defaults(rule, tz=tz, policy=policy)
    names = list(start)
    if not names:
        return {}
    values: dict[str, Any] = {}
    kept: dict[str, Any] = st.session_state.setdefault(KEPT_THRESHOLDS, {})
    # the organisation's zone, hours and days belong to the organisation: in the sidebar
    here = [n for n in names if n not in ORGANISATION]
    there = [n for n in names if n in ORGANISATION]
    columns = st.columns(min(len(here), 4)) if here else []
    places: dict[str, Any] = {n: columns[i % len(columns)] for i, n in enumerate(here)}
    if there:
        side = st.sidebar.container(border=True, key=f"organisation_{rule}")
        side.markdown("**Organisation**")
        side.caption(
            "Where and when people work: off-hours judges people against these and their own habits."
        )
        places.update({n: side for n in there})
    for name in names:
        default = start[name]
        key = _widget_key(rule, name)
        label = RULE_LABELS.get((rule, name)) or THRESHOLD_LABELS.get(
            name, name.replace("_", " ").capitalize()
        )
        help_text = THRESHOLD_HELP.get(name)

        def start_at(argument: str, value: Any, key: str = key) -> dict[str, Any]:
            # a control whose value is in session state (its own, or kept) starts there: given
            # a start too, Streamlit warns that it was set twice
            return {} if key in st.session_state else {argument: value}

        with places[name]:
            if isinstance(default, timedelta):
                unit, seconds = DURATION_UNITS.get(name, ("seconds", 1))
                number = st.number_input(
                    f"{label} ({unit})",
                    min_value=1,
                    step=1,
                    key=key,
                    help=help_text,
                    **start_at("value", _as_control(name, default)),
                )
                values[name] = timedelta(seconds=int(number) * seconds)
            elif name == "hours":
                chosen = st.slider(
                    label,
                    min_value=time(0, 0),
                    max_value=time(23, 45),
                    step=timedelta(minutes=15),
                    format="HH:mm",
                    key=key,
                    help="Events from the first time (included) to the second (excluded) are in hours. "
                    + THRESHOLD_HELP["hours"],
                    **start_at("value", _as_control(name, default)),
                )
                values[name] = tuple(t.strftime("%H:%M") for t in chosen)
            elif name == "weekdays":
                days = st.multiselect(
                    label,
                    list(range(1, 8)),
                    # "Mon" … "Sun": five whole names took five lines, more than the box
                    # shows, and Friday was cut off below a scroll
                    format_func=lambda d: WEEKDAYS[d - 1][:3],
                    key=key,
                    **start_at("default", _as_control(name, default)),
                )
                values[name] = tuple(sorted(days))
            elif name == "org_tz":
                zones = sorted(available_timezones())
                values[name] = st.selectbox(
                    label,
                    zones,
                    key=key,
                    help="Where the working hours are",
                    **start_at("index", zones.index(default)),
                )
                if not (policy or {}).get("org_tz"):
                    # two reviewers in Tokyo and Los Angeles counted 33 and 12 off-hours
                    # findings in one month of one log: each started from their own zone
                    st.caption(ORG_TZ_NOT_SET)
            elif name == "service_accounts":
                values[name] = st.text_input(label, key=key, help=help_text, **start_at("value", default))
            elif name == "by":
                values[name] = st.selectbox(
                    label,
                    list(BY_CHOICES),
                    key=key,
                    help=help_text,
                    **start_at("index", BY_CHOICES.index(default)),
                )
            elif isinstance(default, int):
                values[name] = int(
                    st.number_input(
                        label, min_value=0 if name == "min_history" else 1, step=1, key=key,
                        help=help_text, **start_at("value", default),
                    )
                )  # fmt: skip
        kept[key] = st.session_state[key]
    return values


def _frozen(thresholds: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in thresholds.items()))


def _as_control(name: str, value: Any) -> Any:
    """A threshold as its control holds it: the start :func:`threshold_controls` gives it, and
    what :func:`thresholds_ahead` compares session state with."""
    if isinstance(value, timedelta):
        return int(value.total_seconds() // DURATION_UNITS.get(name, ("seconds", 1))[1])
    if name == "hours":
        return tuple(time.fromisoformat(v) for v in value)
    if name == "weekdays":
        return tuple(value)
    return value


def thresholds_ahead(
    rule: str, *, tz: str = "UTC", policy: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """What :func:`threshold_controls` will return for ``rule`` in this run, known before they
    are drawn when none of its controls was changed from its start (:func:`threshold_defaults`);
    None when one was (the controls then decide)."""
    start = threshold_defaults(rule, tz=tz, policy=policy)
    state = st.session_state
    for name, value in start.items():
        key = _widget_key(rule, name)
        if key not in state:
            continue
        held = state[key]
        if (tuple(held) if isinstance(held, list | tuple) else held) != _as_control(name, value):
            return None
    return start


def detect_ahead(review: Review) -> threading.Thread | None:
    """Start the page's detections in a thread of their own, the longest first, while the page
    draws its login-failure charts: each goes through :func:`findings`' cache, so the page's
    own call for it waits for that result instead of computing it again (on 2 cores, the first
    visit to "All time" at 1,000,000 events ran its 0.7 s of detections after 0.4 s of
    charts). Only rules whose controls are at their start (:func:`thresholds_ahead`), and
    only when the events are held in memory (a database would be asked for them all at once).
    A detection that fails here is left to the page, which computes and reports it itself."""
    if not review.engine.holds_copy:
        return None
    jobs = []
    for rule in sorted(RULE_ORDER, key=lambda r: r not in _LONGEST):
        thresholds = thresholds_ahead(rule, tz=review.tz, policy=review.policy.get(rule))
        if thresholds is not None:
            jobs.append((rule, thresholds))
    if not jobs:
        return None

    def run() -> None:
        for rule, thresholds in jobs:
            try:
                findings(review, rule, thresholds)
            except Exception as exc:  # the page's own call computes it and shows why
                log.debug("detecting %s ahead failed: %s", rule, exc)

    thread = threading.Thread(target=run, name="audit-detect-ahead", daemon=True)
    thread.start()
    return thread


_LONGEST = ("off_hours", "permission_changes")  # at 1,000,000 events: 0.24 s and 0.09 s, the others < 0.03


def findings(review: Review, rule: str, thresholds: dict[str, Any]) -> pl.DataFrame:
    """The findings of ``rule`` on the reviewed events (cached by the thresholds)."""
    found: pl.DataFrame = review.cached(
        f"rule:{rule}", lambda: review.detect(rule, thresholds), _frozen(thresholds)
    )
    return found


# ---------------------------------------------------------------------------------------
# detection tables


def _fmt_time(column: str, tz: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d %H:%M:%S")


def _joined(column: str) -> pl.Expr:
    return pl.col(column).list.join(", ")


def _with_links(
    shown: pl.DataFrame, links: Sequence[str | None], firsts: Sequence[str | None]
) -> pl.DataFrame:
    return shown.with_columns(
        pl.Series("Events", links, dtype=pl.String), pl.Series("First event", firsts, dtype=pl.String)
    )


def _login_link(review: Review, row: dict[str, Any], results: tuple[str, ...], *terms: str) -> str:
    """The Audit Log on a finding's logins (``results``, ``terms``) between its first and
    last event."""
    view = _finding_view(
        review,
        row["first"],
        row["last"],
        types=("auth",),
        results=results,
        query=_login_query(review, *terms),
    )
    return explorer_link(view)


def _failure_links(review: Review, rows: list[dict[str, Any]], field: str) -> list[str | None]:
    """For each window finding: the Audit Log on its login failures of its key (``field``)."""
    return [_login_link(review, r, ("failed",), _qualified(field, r["key"])) for r in rows]


def table_frame(review: Review, rule: str, found: pl.DataFrame, thresholds: dict[str, Any]) -> pl.DataFrame:
    """The findings as the table shows them: times in the shown zone, lists as text, links."""
    tz = review.tz
    rows = found.to_dicts()
    first_ids = [r["event_ids"][0] if r["event_ids"] else None for r in rows]
    if rule in ("brute_force", "password_spray"):
        links = _failure_links(review, rows, "ip")
        shown = found.select(
            # the key and its counts first: on a narrow screen they are what shows
            pl.col("key").alias("Source IP"),
            pl.col("count").alias("Failures"),
            pl.col("max_in_window").alias("Most in one window"),
            *(
                [pl.col("max_accounts").alias("Most accounts in one window")]
                if rule == "password_spray"
                else []
            ),
            pl.col("accounts").list.len().alias("Accounts"),
            _fmt_time("first", tz).alias("First"),
            _fmt_time("last", tz).alias("Last"),
            _joined("accounts").alias("Account names"),
        )
        return _with_links(shown, links, [_event_link(i) for i in first_ids])
    if rule == "account_under_attack":
        links = _failure_links(review, rows, "user")
        shown = found.select(
            pl.col("key").alias("Account"),
            pl.col("count").alias("Failures"),
            pl.col("max_in_window").alias("Most in one window"),
            pl.col("max_ips").alias("Most IPs in one window"),
            _fmt_time("first", tz).alias("First"),
            _fmt_time("last", tz).alias("Last"),
            _joined("ips").alias("Source IPs"),
        )
        return _with_links(shown, links, [_event_link(i) for i in first_ids])
    if rule == "denied_calls":
        links = [
            explorer_link(
                _finding_view(
                    review, r["first"], r["last"], results=("failed",), query=_qualified("user", r["key"])
                )
            )
            for r in rows
        ]
        shown = found.select(
            pl.col("key").alias("Actor"),
            pl.col("count").alias("Refused"),
            pl.col("max_in_window").alias("Most in one window"),
            _fmt_time("first", tz).alias("First"),
            _fmt_time("last", tz).alias("Last"),
            _joined("ips").alias("Source IPs"),
        )
        return _with_links(shown, links, [_event_link(i) for i in first_ids])
    if rule == "success_after_failures":
        by = thresholds.get("by", "account")
        links = []
        for r in rows:
            terms = []
            if by in ("account", "both") and r["account"] is not None:
                terms.append(_qualified("user", r["account"]))
            if by in ("ip", "both") and r["ip"] is not None:
                terms.append(_qualified("ip", r["ip"]))
            links.append(_login_link(review, r, (), *terms))
        shown = found.select(
            pl.col("account").alias("Account"),
            pl.col("ip").alias("Success from IP"),
            _fmt_time("success_time", tz).alias("Signed in at"),
            pl.col("failures").alias("Failures before"),
            _fmt_time("first", tz).alias("First failure"),
            _joined("ips").alias("Source IPs"),
        )
        return shown.with_columns(
            pl.Series("Events", links, dtype=pl.String),
            pl.Series("Success event", [_event_link(r["success_id"]) for r in rows], dtype=pl.String),
        )
    if rule == "off_hours":
        org_tz = thresholds.get("org_tz") or tz
        shown = found.select(
            pl.col("key").alias("Actor"),
            pl.col("local_time").dt.strftime("%a %Y-%m-%d %H:%M").alias(f"Time ({org_tz})"),
            pl.col("why").alias("Why"),
            pl.col("type").cast(pl.String).alias("Type"),
            pl.col("action").alias("Action"),
            pl.col("target").alias("Target"),
            _joined("ips").alias("IP"),
        )
        return shown.with_columns(pl.Series("Event", [_event_link(r["id"]) for r in rows], dtype=pl.String))
    if rule == "permission_changes":
        # the flags a reviewer scans for, as text first in the row (a styled table cost half
        # of the page's rerun and its bytes); rows come riskiest first
        shown = found.select(
            pl.when(pl.col("risk") > 0)
            .then(pl.lit("⚠ ") + pl.col("flags").list.join(" · "))
            .otherwise(pl.lit(""))
            .alias("Flags"),
            _fmt_time("first", tz).alias("Time"),
            pl.col("actor").alias("Granted by"),
            pl.col("target").alias("Target"),
            pl.col("action").alias("Action"),
            pl.col("result").cast(pl.String).alias("Result"),
            pl.concat_str(
                pl.col("before_role").fill_null("–"), pl.lit(" → "), pl.col("after_role").fill_null("–")
            ).alias("Role before → after"),
            _joined("permissions_added").alias("Permissions added"),
            _joined("permissions_removed").alias("Permissions removed"),
            pl.col("risk").alias("Risk"),
        )
        return shown.with_columns(pl.Series("Event", [_event_link(r["id"]) for r in rows], dtype=pl.String))
    if rule == "stuck_operations":
        links = []
        for r, first_id in zip(rows, first_ids, strict=True):
            if r["key"] != first_id:  # a request id: every event of the operation
                links.append(
                    explorer_link(
                        View(filter=Filter(period="all", query=_qualified("request_id", r["key"]), tz=tz))
                    )
                )
            else:
                links.append(_event_link(first_id))
        shown = found.select(
            pl.col("key").alias("Operation"),
            _fmt_time("first", tz).alias("Started"),
            _fmt_time("last", tz).alias("Last update"),
            pl.col("state").alias("State"),
            (pl.col("age").dt.total_minutes()).alias("Minutes in this state"),
            _joined("accounts").alias("Actor"),
            pl.col("type").cast(pl.String).alias("Type"),
            pl.col("action").alias("Action"),
            pl.col("target").alias("Target"),
        )
        return shown.with_columns(pl.Series("Events", links, dtype=pl.String))
    raise ValueError(f"unknown rule {rule!r}")


LONG_NAME = 24  # characters: a longer actor or target gets a fixed width, the rest stays in view


def _longest(shown: pl.DataFrame, name: str) -> int:
    if shown.height == 0 or shown.schema[name] != pl.String:
        return 0
    longest = shown.select(pl.col(name).str.len_chars().max()).item()
    return int(longest or 0)


def _column_config(shown: pl.DataFrame) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in shown.columns:
        if name in ("Events", "First event", "Success event", "Event"):
            config[name] = st.column_config.LinkColumn(
                name, display_text="open" if name != "Events" else "open in Audit Log", width="small"
            )
        elif name == "Flags":
            # large: the riskiest rows' flags whole at 1440 px ("⚠ self-grant · grants admin ·
            # first grant by this actor"; medium cut them after "first"), a phone's first screen
            # shows the flags alone, the rest a swipe away
            config[name] = st.column_config.TextColumn(
                name,
                width="large",
                help="Self-grant, grants admin, first grant by this actor, outside the actor's hours, failed",
            )
        elif name == "Risk":
            config[name] = st.column_config.NumberColumn(
                name,
                width="small",
                help="The sum of the flags' weights: "
                + ", ".join(f"{words} {weight}" for weight, words in security.RISKS.values()),
            )
        elif name == "Why":
            config[name] = st.column_config.TextColumn(name, width="large")
        elif name in ("Actor", "Account", "Granted by", "Target") and _longest(shown, name) > LONG_NAME:
            # imported logs name actors by long ARNs: the rest of the row stays in view
            config[name] = st.column_config.TextColumn(name, width="medium")
    return config


def explain(rule: str, thresholds: Mapping[str, Any] | None = None, *, tz: str = "UTC") -> str:
    """What a detection means, in one line for the page: its ATT&CK technique, the rule with
    the thresholds in effect and where the shipped ones come from (the registry's text; the
    thresholds in it are numbers, durations, times, weekdays and a zone the controls or the
    policy file checked: no free text, which the rule does not quote)."""
    d = security.DETECTIONS[rule]
    return f"MITRE ATT&CK {d.technique} · {d.text(thresholds, tz=tz)} Thresholds: {d.source}"


def detection(review: Review, rule: str) -> pl.DataFrame:
    """One detection: its title and findings count, what it means, threshold controls, and
    findings table. Returns the findings (for the headline and the backtest)."""
    urgent = rule == "success_after_failures"
    ranked = rule == "permission_changes"
    box = st.container(border=True, key=f"detection_{rule}")
    with box:
        heading = st.empty()
        st.caption(security.DETECTIONS[rule].description)
        meaning = st.empty()  # the rule says the thresholds the controls below hold
        thresholds = threshold_controls(rule, tz=review.tz, policy=review.policy.get(rule))
        meaning.caption(explain(rule, thresholds, tz=review.tz))
        try:
            found = findings(review, rule, thresholds)
        except NeedsMemory as exc:
            heading.subheader(RULE_TITLES[rule])
            st.info(str(exc), icon=":material/memory:")
            return pl.DataFrame()
        except (security.DetectionError, ValueError) as exc:
            heading.subheader(RULE_TITLES[rule])
            st.error(f"These thresholds cannot be used: {exc}", icon=":material/error:")
            return pl.DataFrame()
        n = found.height
        title = f"{RULE_TITLES[rule]} · {n:,} finding{'' if n == 1 else 's'}"
        heading.subheader(title, anchor=rule.replace("_", "-"))
        if urgent and n:
            st.error(
                f"{n:,} successful login{'' if n == 1 else 's'} right after a run of failures: "
                "a password may have been guessed. Check these first.",
                icon=":material/warning:",
            )
        if n == 0:
            st.caption("Nothing found in this period with these thresholds.")
            return found
        always = int((found["risk"] > 0).sum()) if ranked else 0
        rest = n - always
        limit = SHOWN_ROWS
        if rest > SHOWN_ROWS:
            more = min(rest, MAX_TABLE_ROWS)
            what = "unflagged changes" if ranked else "findings"
            if st.toggle(
                f"Show all {rest:,} {what}" if rest <= MAX_TABLE_ROWS else f"Show the {more:,} newest {what}",
                key=f"more_{rule}",
                help="The table shows the newest findings first; the count in the title is all of them."
                if not ranked
                else "Flagged changes are always listed, riskiest first; this shows more of the others.",
            ):
                limit = MAX_TABLE_ROWS
        # only the rows shown are formatted and linked (cached per limit and thresholds)
        shown = finding_table(review, rule, found, thresholds, limit)
        hidden = n - shown.height
        if ranked:
            # a row that wraps: at 800 px two columns cut the button to "Open all 17 in the…"
            row = st.container(horizontal=True, vertical_alignment="center")
            row.caption(
                f"All {always:,} flagged change{'' if always == 1 else 's'} listed first, riskiest first"
                + (f"; {hidden:,} unflagged not shown." if hidden else ".")
            )
            if row.button(
                f"Open all {n:,} in the Audit Log",
                key="open_permission_changes",
                icon=":material/list:",
                width="content",
                help="The Audit Log's Type: Permission changes, for this period, users and search",
            ):
                open_explorer(_explorer_view(review, types=(PERMISSION,)))
        elif hidden:
            more_text = (
                "switch on the toggle above to see more"
                if shown.height < min(n, MAX_TABLE_ROWS)
                else "narrow the period or raise the thresholds to see the rest"
            )
            st.caption(f"Showing the {shown.height:,} newest of {n:,} findings: {more_text}.")
        # keyed by what it shows: a ticked row of another view must not open this one's
        ticked = st.dataframe(
            shown,
            key=f"table_{rule}_{abs(hash((review.filter, review.bounds, _frozen(thresholds), limit)))}",
            hide_index=True,
            width="stretch",
            height=min(38 + 35 * shown.height, 400),
            column_config=_column_config(shown),
            on_select="rerun",
            selection_mode="single-row",
        )
        st.caption("Tick a row to open its events in the Audit Log here; its links open them in a new tab.")
        link = opened_link(shown, ticked)
        if link:
            open_explorer_link(link)
    return found


OPENS = ("Events", "Event", "Success event", "First event")
"""What a ticked finding opens: the first of these link columns its table has (the finding's
events, else its one event)."""


def opened_link(shown: pl.DataFrame, event: Any) -> str | None:
    """The link a ticked row of a findings table opens (:data:`OPENS`), or None."""
    row = common.ticked_row(event, shown.height)
    if row is None:
        return None
    for name in OPENS:
        if name in shown.columns and shown[name][row]:
            return str(shown[name][row])
    return None


def finding_table(
    review: Review, rule: str, found: pl.DataFrame, thresholds: dict[str, Any], limit: int = SHOWN_ROWS
) -> pl.DataFrame:
    """The table of ``rule``'s findings a detection shows (:func:`shown_findings`, formatted
    and linked by :func:`table_frame`), cached per thresholds and ``limit``."""
    shown: pl.DataFrame = review.cached(
        f"table:{rule}",
        lambda: table_frame(
            review, rule, shown_findings(found, limit, ranked=rule == "permission_changes"), thresholds
        ),
        _frozen(thresholds),
        limit,
    )
    return shown


def shown_findings(found: pl.DataFrame, limit: int = MAX_TABLE_ROWS, *, ranked: bool = False) -> pl.DataFrame:
    """The findings a table shows: the ``limit`` newest, newest first (what a reviewer reads
    first); ``ranked`` (findings with a ``risk``): every flagged one, riskiest first, then the
    ``limit`` newest of the others (a cap never hides a flagged finding)."""
    if ranked:
        flagged = found.filter(pl.col("risk") > 0).sort(
            ["risk", "first"], descending=True, maintain_order=True
        )
        others = found.filter(pl.col("risk") == 0)
        return pl.concat([flagged, newest(others, limit)])
    return newest(found, limit)


def newest(found: pl.DataFrame, limit: int = MAX_TABLE_ROWS) -> pl.DataFrame:
    """The ``limit`` newest findings, newest first."""
    order = ["first", "last"] if "last" in found.columns else ["first"]
    return found.sort(order, descending=True, maintain_order=True).head(limit)


# ---------------------------------------------------------------------------------------
# warm-up


def warm(
    shared: SharedFrame,
    *,
    tz: str = "UTC",
    period: Period = DEFAULT_VIEW.filter.period,
    between: Callable[[], object] = lambda: None,
) -> None:
    """Compute what a first visit to the page shows at its default view with ``period`` in
    ``tz``: the counts, the login-failure charts at the default Top, and every detection with
    the organisation's thresholds and its table, so the visit finds them held. A period too
    large for memory, or a policy that cannot be used, is left to the page to explain.
    ``between`` is called before each chart and detection (the app waits there while pages run)."""
    view = DEFAULT_VIEW.replace(filter=DEFAULT_VIEW.filter.replace(tz=tz, period=period))
    try:
        r = review(shared, view)
        if not r.count:
            return
        for name in ("by_ip", "by_account", "by_hour", "over_time"):
            between()
            failure_figure(r, name)
        between()
        r.cached("summary", r.summary)
        for rule in RULE_ORDER:
            between()
            thresholds = threshold_defaults(rule, tz=r.tz, policy=r.policy.get(rule))
            try:
                found = findings(r, rule, thresholds)
            except NeedsMemory:
                continue
            if found.height:
                finding_table(r, rule, found, thresholds)
    except (NeedsMemory, DetectionError):
        return


# ---------------------------------------------------------------------------------------
# backtest


def findings_per_day(review: Review, results: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Findings of each rule per day (by the finding's first event) over the reviewed period,
    in the shown zone (:func:`audit_analytics.analysis.security.findings_per_bucket`, from the findings
    the page already holds): ``day`` and one column per rule."""
    span = review.span()
    tz = review.tz
    if span is None:
        return pl.DataFrame(schema={"day": pl.Datetime("us", tz)})
    inclusive = (span[0], span[1] - timedelta(microseconds=1))
    no_findings = pl.DataFrame(schema={"first": pl.Datetime("us", "UTC")})
    out: pl.DataFrame | None = None
    for rule in RULE_ORDER:
        found = results.get(rule)
        if found is None or "first" not in found.columns:
            found = no_findings
        per_day = security.findings_per_bucket(found, inclusive, every="1d", tz=tz).rename(
            {"bucket": "day", "findings": rule}
        )
        out = per_day if out is None else out.join(per_day, on="day", how="left")
    assert out is not None
    return out.with_columns(pl.col(RULE_ORDER).fill_null(0))


def backtest_chart(review: Review, results: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Findings per day and rule with the current thresholds, to tune a threshold before
    trusting it (click a rule in the legend to hide it)."""
    per_day = findings_per_day(review, results)
    if per_day.height == 0:
        st.caption("No events in this period.")
        return per_day
    tz = review.tz
    fig = go.Figure()
    days = [d.replace(tzinfo=None) for d in per_day["day"].to_list()]
    for rule in RULE_ORDER:
        fig.add_scatter(
            x=days,
            y=per_day[rule].to_list(),
            name=RULE_TITLES[rule],
            mode="lines+markers",
            hovertemplate=f"<b>{RULE_TITLES[rule]}</b><br>%{{x|%a %Y-%m-%d}}<br>%{{y:,}} findings<extra></extra>",
        )
    charts.style(
        fig,
        title="Findings per day with the current thresholds",
        x_title=f"Day ({tz})",
        y_title="Findings",
        legend_title="Rule",
    )
    st.plotly_chart(fig, key="chart_backtest", width="stretch", config=charts.PLOT_CONFIG)
    charts.download_chart_data(per_day, key="download_backtest", file_name="findings-per-day.csv")
    return per_day
