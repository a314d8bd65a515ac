"""Where a rendered Plotly chart's tick labels and legend sit, measured from the SVG in a real browser.

Tick labels may be turned, so each is measured as the four corners of its text box mapped through
the element's own transform to page pixels; two labels overlap when those quadrilaterals intersect
(separating-axis test), which an axis-aligned box of a turned label would claim far too often.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple, Sequence

Quad = Sequence[tuple[float, float]]

# For every .js-plotly-plot under `root`: per axis (xtick, ytick, x2tick...) the label texts and their
# corners in page pixels, the same for the title and for text drawn on the data ("cells", "bar text"), and
# the legend's box.
MEASURE_JS = """
(root) => [...root.querySelectorAll('.js-plotly-plot')].map(plot => {
  const corners = (element) => {
    const box = element.getBBox(), matrix = element.getScreenCTM();
    return [[box.x, box.y], [box.x + box.width, box.y], [box.x + box.width, box.y + box.height],
            [box.x, box.y + box.height]].map(([x, y]) => {
      const point = new DOMPoint(x, y).matrixTransform(matrix);
      return [point.x, point.y];
    });
  };
  const axes = {};
  for (const text of plot.querySelectorAll('g[class$="tick"] > text')) {
    const group = text.parentElement.getAttribute('class');
    if (!text.textContent.trim() || getComputedStyle(text).display === 'none') continue;
    (axes[group] = axes[group] || []).push({text: text.textContent, quad: corners(text)});
  }
  // The chart's and its axes' titles: the legend must not sit on them.
  for (const text of plot.querySelectorAll('.gtitle, .xtitle, .ytitle')) {
    if (!text.textContent.trim()) continue;
    (axes['title'] = axes['title'] || []).push({text: text.textContent, quad: corners(text)});
  }
  // Numbers written on the data: a heatmap's cells and text beside or inside bars.
  for (const [group, selector] of [['cells', '.heatmaplayer text'], ['bar text', '.barlayer text.bartext']]) {
    for (const text of plot.querySelectorAll(selector)) {
      if (!text.textContent.trim() || getComputedStyle(text).display === 'none') continue;
      (axes[group] = axes[group] || []).push({text: text.textContent, quad: corners(text)});
    }
  }
  const legend = plot.querySelector('g.legend .bg');
  return {id: plot.id || (plot.closest('[id]') || {}).id || '', axes,
          legend: legend ? corners(legend) : null, width: plot.getBoundingClientRect().width};
})
"""


class Overlap(NamedTuple):
    chart: str
    first: str
    second: str


def _axes(quad: Quad) -> list[tuple[float, float]]:
    return [(-(quad[(i + 1) % 4][1] - quad[i][1]), quad[(i + 1) % 4][0] - quad[i][0]) for i in range(4)]


def quads_intersect(first: Quad, second: Quad, *, tolerance: float = 0.5) -> bool:
    """Whether two convex quadrilaterals overlap by more than `tolerance` pixels along every axis."""
    for axis in _axes(first) + _axes(second):
        length = (axis[0] ** 2 + axis[1] ** 2) ** 0.5 or 1.0
        unit = (axis[0] / length, axis[1] / length)
        project = [[x * unit[0] + y * unit[1] for x, y in quad] for quad in (first, second)]
        if min(project[0]) >= max(project[1]) - tolerance or min(project[1]) >= max(project[0]) - tolerance:
            return False
    return True


def overlaps(measured: list[dict]) -> list[Overlap]:
    """Every pair of labels in one group (an axis's ticks, a heatmap's cells, the bars' texts) that
    intersect, and every label under a legend."""
    found = []
    for chart in measured:
        for labels in chart["axes"].values():
            for first, second in itertools.combinations(labels, 2):
                if quads_intersect(first["quad"], second["quad"]):
                    found.append(Overlap(chart["id"], first["text"], second["text"]))
        if chart["legend"]:
            for labels in chart["axes"].values():
                found += [Overlap(chart["id"], label["text"], "legend") for label in labels
                          if quads_intersect(label["quad"], chart["legend"])]
    return found
