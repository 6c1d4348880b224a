#!/usr/bin/env python3
"""Offline checks of the monitoring files, run by scripts/validate-deploy.sh (needs PyYAML,
except `rules --write`: the script runs it with the yamllint virtualenv's python).

  check-monitoring.py metrics [--sources DIR] [--emit-rules FILE]
      Every dashboard under k8s/monitoring/dashboards/ parses, has a uid and unique panel ids;
      every metric named in a panel query or in an expression of deploy/prometheus/alerts.yml
      is exported: defined in the Rust sources by a counter!/gauge!/histogram! call (histograms
      also as _bucket, _sum, _count), or from an external exporter (EXTERNAL). --emit-rules
      writes the panel queries as recording rules, for `promtool check rules` to parse them.
  check-monitoring.py rules RENDERED [--write]
      The PrometheusRule in RENDERED (kubectl kustomize k8s/monitoring) has exactly the groups
      of deploy/prometheus/alerts.yml. --write regenerates k8s/monitoring/prometheusrule.yaml
      from alerts.yml instead.
  check-monitoring.py podmonitors BASE_RENDERED MONITORING_RENDERED
      Each PodMonitor selects the pods of one Deployment of k8s/base, in a namespace it names,
      by a port name those pods have; each Deployment has one; the job names the PodMonitors
      produce are the scrape jobs of deploy/prometheus/prometheus.yml.
"""

import argparse
import json
import os
import re
import sys

try:
    import yaml
except ImportError:  # only `rules --write` runs without PyYAML
    yaml = None

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARDS = os.path.join(REPO, "k8s", "monitoring", "dashboards")
ALERTS = os.path.join(REPO, "deploy", "prometheus", "alerts.yml")
PROMETHEUS = os.path.join(REPO, "deploy", "prometheus", "prometheus.yml")
PROMETHEUS_RULE = os.path.join(REPO, "k8s", "monitoring", "prometheusrule.yaml")

# Metrics from other exporters: RabbitMQ's rabbitmq_prometheus plugin, Envoy, and Prometheus
# itself (`up` per target, `ALERTS` for the alerting rules).
EXTERNAL_PREFIXES = ("rabbitmq_", "envoy_")
EXTERNAL_NAMES = {"up", "ALERTS"}

DEFINITION = re.compile(r'\b(?:metrics::)?(counter|gauge|histogram)!\s*\(\s*"([^"]+)"')
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Words of PromQL that look like metric names: keywords, aggregation operators, literals.
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "atan2", "inf", "nan",
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
# Grafana's interval variables, replaced by a duration so promtool can parse the query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def fail(errors):
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


def defined_metrics(root):
    """{name: kind} for every counter!/gauge!/histogram! call in the *.rs files under root."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("target", ".git") and not d.startswith(".")]
        for name in filenames:
            if not name.endswith(".rs"):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                for kind, metric in DEFINITION.findall(f.read()):
                    found[metric] = kind
    return found


def grafana_to_promql(expr):
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace("${" + var[1:] + "}", value).replace(var, value)
    return expr


def metric_names(expr):
    """The metric names an expression selects (a lexical scan, not a full PromQL parser; the
    expressions are parsed by promtool separately)."""
    s = grafana_to_promql(expr)
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', s)  # strings
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range and subquery windows
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r" \1 ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", s):
        if m.group(1) not in PROMQL_WORDS:
            names.add(m.group(1))
    return names


def panels_of(dashboard):
    """(panel, top_level) for every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel, True
        for nested in panel.get("panels", []):
            yield nested, False


def check_metrics(args):
    errors = []
    sources = os.path.abspath(args.sources or REPO)
    defined = defined_metrics(sources)
    if not defined:
        fail([f"no counter!/gauge!/histogram! call found under {sources}"])

    # (where, expression) for every dashboard query and alert expression.
    queries, rules, uids = [], [], {}
    files = sorted(f for f in os.listdir(DASHBOARDS) if f.endswith(".json"))
    if not files:
        errors.append(f"no dashboard in {os.path.relpath(DASHBOARDS, REPO)}")
    for name in files:
        path = os.path.join(DASHBOARDS, name)
        rel = os.path.relpath(path, REPO)
        try:
            with open(path, encoding="utf-8") as f:
                dashboard = json.load(f)
        except ValueError as e:
            errors.append(f"{rel}: not JSON: {e}")
            continue
        uid = dashboard.get("uid")
        if not uid or not dashboard.get("title"):
            errors.append(f"{rel}: no uid or no title")
        elif uid in uids:
            errors.append(f"{rel}: uid {uid!r} also used by {uids[uid]}")
        uids[uid] = rel
        seen, cells = {}, {}
        for panel, top_level in panels_of(dashboard):
            pid, title = panel.get("id"), panel.get("title", "")
            pos = panel.get("gridPos", {})
            x, y, w, h = (pos.get(k) for k in ("x", "y", "w", "h"))
            if not all(isinstance(v, int) for v in (x, y, w, h)) or x < 0 or w < 1 or h < 1 or x + w > 24:
                errors.append(f"{rel}: panel {title!r}: gridPos {pos} is not inside the 24-column grid")
            elif top_level:  # rows' own panels fold away
                for cell in ((cx, cy) for cx in range(x, x + w) for cy in range(y, y + h)):
                    if cell in cells:
                        errors.append(f"{rel}: panels {cells[cell]!r} and {title!r} overlap")
                        break
                    cells[cell] = title
            if not isinstance(pid, int):
                errors.append(f"{rel}: panel {title!r} has no integer id")
            elif pid in seen:
                errors.append(f"{rel}: panel id {pid} used by {seen[pid]!r} and {title!r}")
            else:
                seen[pid] = title
            if panel.get("type") != "row" and not panel.get("targets"):
                errors.append(f"{rel}: panel {title!r} has no query")
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                if not expr.strip():
                    errors.append(f"{rel}: panel {title!r} query {target.get('refId')} is empty")
                    continue
                where = f"{rel}: panel {pid} {title!r} query {target.get('refId')}"
                queries.append((where, expr, f"dashboard_{uid}_panel_{pid}_{target.get('refId')}"))
    with open(ALERTS, encoding="utf-8") as f:
        for group in yaml.safe_load(f)["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                rules.append((f"{os.path.relpath(ALERTS, REPO)}: {name}", rule["expr"]))

    for where, expr in [(w, e) for w, e, _ in queries] + rules:
        for name in sorted(metric_names(expr)):
            base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
            if name in defined:
                if defined[name] == "histogram":
                    errors.append(f"{where}: {name} is a histogram; use {name}_bucket/_sum/_count")
                continue
            if base is not None and defined.get(base) == "histogram":
                continue
            if name in EXTERNAL_NAMES or name.startswith(EXTERNAL_PREFIXES):
                continue
            errors.append(f"{where}: {name} is not exported by the services (no counter!/gauge!/"
                          f"histogram! \"{name}\" under {sources}) nor by an external exporter")

    if args.emit_rules:
        group = {"name": "dashboard-queries",
                 "rules": [{"record": record, "expr": grafana_to_promql(expr)} for _, expr, record in queries]}
        with open(args.emit_rules, "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": [group]}, f, sort_keys=False)

    if errors:
        fail(errors)
    print(f"{len(files)} dashboard(s), {len(queries)} panel queries and {len(rules)} alert expressions: "
          f"every metric is exported ({len(defined)} defined in the Rust sources)")


def first_difference(a, b, path="groups"):
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}.{key}: only in {'alerts.yml' if key in a else 'the PrometheusRule'}"
            diff = first_difference(a[key], b[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} entries in alerts.yml, {len(b)} in the PrometheusRule"
        for i, (x, y) in enumerate(zip(a, b)):
            diff = first_difference(x, y, f"{path}[{i}]")
            if diff:
                return diff
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


def write_prometheus_rule():
    with open(ALERTS, encoding="utf-8") as f:
        text = f.read()
    body = text[text.index("\ngroups:\n") + 1:]
    with open(PROMETHEUS_RULE, encoding="utf-8") as f:
        current = f.read()
    head = current[: current.index("\nspec:\n") + len("\nspec:\n")]
    indented = "".join("  " + line if line.strip() else line for line in body.splitlines(True))
    with open(PROMETHEUS_RULE, "w", encoding="utf-8") as f:
        f.write(head + indented)
    print(f"wrote {os.path.relpath(PROMETHEUS_RULE, REPO)} from {os.path.relpath(ALERTS, REPO)}")


def check_rules(args):
    if args.write:
        write_prometheus_rule()
        return
    with open(ALERTS, encoding="utf-8") as f:
        expected = yaml.safe_load(f)["groups"]
    found = [d for d in load_all(args.rendered) if d.get("kind") == "PrometheusRule"]
    if len(found) != 1:
        fail([f"{args.rendered}: {len(found)} PrometheusRules, expected 1"])
    diff = first_difference(expected, found[0]["spec"].get("groups"))
    if diff:
        fail([f"the PrometheusRule differs from deploy/prometheus/alerts.yml at {diff}; "
              f"regenerate it: python3 scripts/check-monitoring.py rules --write"])
    print(f"PrometheusRule {found[0]['metadata']['name']}: the same {len(expected)} groups as alerts.yml")


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def check_podmonitors(args):
    errors = []
    deployments = [d for d in load_all(args.base) if d["kind"] == "Deployment"]
    monitors = [d for d in load_all(args.monitoring) if d["kind"] == "PodMonitor"]
    covered, jobs = {}, set()
    for pm in monitors:
        name, spec = pm["metadata"]["name"], pm["spec"]
        namespaces = spec.get("namespaceSelector", {}).get("matchNames", [pm["metadata"].get("namespace")])
        wanted = spec.get("selector", {}).get("matchLabels", {})
        if not wanted or set(spec.get("selector", {})) - {"matchLabels"}:
            errors.append(f"PodMonitor {name}: select with matchLabels only")
            continue
        matches = [
            d for d in deployments
            if d["metadata"].get("namespace") in namespaces
            and wanted.items() <= d["spec"]["template"]["metadata"].get("labels", {}).items()
        ]
        if len(matches) != 1:
            errors.append(f"PodMonitor {name}: selects {len(matches)} Deployments in {namespaces}, expected 1")
            continue
        deployment = matches[0]
        dname = deployment["metadata"]["name"]
        covered.setdefault(dname, []).append(name)
        labels = deployment["spec"]["template"]["metadata"].get("labels", {})
        job_label = spec.get("jobLabel")
        if job_label not in labels:
            errors.append(f"PodMonitor {name}: jobLabel {job_label!r} is not a label of {dname}'s pods")
        else:
            jobs.add(labels[job_label])
        ports = {p.get("name") for c in deployment["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for endpoint in spec.get("podMetricsEndpoints", []):
            if endpoint.get("port") not in ports:
                errors.append(f"PodMonitor {name}: port {endpoint.get('port')!r} is not a container port of "
                              f"{dname} (it has {sorted(p for p in ports if p)})")
    for d in deployments:
        n = len(covered.get(d["metadata"]["name"], []))
        if n != 1:
            errors.append(f"Deployment {d['metadata']['name']}: {n} PodMonitors, expected 1")
    with open(PROMETHEUS, encoding="utf-8") as f:
        compose_jobs = {j["job_name"] for j in yaml.safe_load(f)["scrape_configs"]}
    if not jobs <= compose_jobs:
        errors.append(f"PodMonitor jobs {sorted(jobs - compose_jobs)} are not scrape jobs of "
                      f"deploy/prometheus/prometheus.yml: the alerts and dashboards select by job")
    if errors:
        fail(errors)
    print(f"{len(monitors)} PodMonitors, one per Deployment, by named port; jobs {sorted(jobs)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("metrics")
    p.add_argument("--sources", help="where to look for the Rust sources (default: the repository)")
    p.add_argument("--emit-rules", help="write the panel queries as a rules file for promtool")
    p.set_defaults(run=check_metrics)
    p = sub.add_parser("rules")
    p.add_argument("rendered", nargs="?", help="kubectl kustomize k8s/monitoring output")
    p.add_argument("--write", action="store_true")
    p.set_defaults(run=check_rules)
    p = sub.add_parser("podmonitors")
    p.add_argument("base")
    p.add_argument("monitoring")
    p.set_defaults(run=check_podmonitors)
    args = parser.parse_args()
    if args.command == "rules" and not args.write and not args.rendered:
        parser.error("rules: RENDERED is required unless --write")
    if yaml is None and not (args.command == "rules" and args.write):
        parser.error("needs PyYAML: run it with the yamllint virtualenv's python, as validate-deploy.sh does")
    args.run(args)


if __name__ == "__main__":
    main()
