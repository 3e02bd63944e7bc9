"""`novamove report RUN --html FILE`: a picture of a run, from the journal alone."""

from __future__ import annotations

import click

from novamove.cli import journal_path, main


@main.command()
@click.argument("run_id", metavar="RUN")
@click.option("--html", "html_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write one self-contained HTML page (inline SVG timeline, caps over time, summary).")
@click.option("--svg", "svg_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write the timeline alone as a standalone SVG (to paste into a ticket).")
@click.pass_context
def report(ctx, run_id, html_file, svg_file):
    """Draw run RUN (an id or a unique prefix, see `novamove history`) from the journal: a lane
    per host (a campaign's stages disable, drain, hook, gate, enable; a drain's time out of
    service), a lane per move coloured by its result, the caps over time and the summary.
    Finished or interrupted runs alike; reads the journal only, never the cloud."""
    from novamove import api, errors
    from novamove.observe import timeline
    if not html_file and not svg_file:
        raise errors.UsageError("say what to write: --html FILE and/or --svg FILE")
    tl = timeline.build(api.run_record(run_id, journal_path=journal_path(ctx)))
    for path, text in ((html_file, timeline.html_page(tl) if html_file else ""),
                       (svg_file, timeline.svg(tl) if svg_file else "")):
        if path:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            click.echo(f"wrote {path}", err=True)
