"""The fuzzer: every operation of the gateway's merged OpenAPI document, as one caller with a real token,
fed by schemathesis' generators (valid and schema-violating data) under a bounded hypothesis budget, and
optionally first by its coverage phase (deterministic edge cases: boundary values, each parameter missing
or of the wrong type, undeclared methods).

Each response is judged, and every distinct failure is kept (not just the first: a run should list all
there is to fix), with the shortest request that showed it:
- `server error`: any 5xx. No input a client can send may make one.
- `response schema`: a documented status sent with a media type the document does not give for it, or
  a body that does not match the documented schema.
- `undocumented status`: a status the document does not list that is not a 4xx problem+json. The services
  document only FastAPI's 200/201/422; their 400/401/403/404/409/413 are the shared RFC 9457 problem
  (README, Conventions) that every client already handles, so an undocumented 4xx problem+json with both
  titles is tolerated, while an undocumented 2xx/3xx, or a 4xx in another shape, breaks the contract.
- `harness`: the request could not be generated or sent (a fuzzer problem, not a service's).

Not fuzzed (they would break the run itself): POST /auth/logout revokes the caller's token, so every later
request would be 401; POST /admin/keys/rotate adds a signing key per call, and the services re-read the
JWKS at most once a second, so the rest of the run would see spurious 401s. Both have their own tests in
tests/gateway.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import Failure as CheckFailure
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

Operation: TypeAlias = APIOperation[Any, Any, Any, Any]
AnyCase: TypeAlias = Case[Any]

EXCLUDED = {"POST /auth/logout", "POST /admin/keys/rotate"}
PROBLEM_JSON = "application/problem+json"

# which seeded id a path parameter can take: `{ident}` by the collection it follows, others by name
_COLLECTION_IDS = {
    "residents": "resident_id",
    "communities": "community_id",
    "institutions": "institution_id",
}
_NAMED_IDS = {
    "resident_id": "resident_id",
    "community_id": "community_id",
    "county_code": "county_code",
    "county": "county_code",
    "code": "county_code",
}
_FIXED = {"year": "2026", "month": "3"}


@dataclass(frozen=True)
class Finding:
    operation: str
    kind: str  # server error | response schema | undocumented status | harness
    status: int | None
    what: str  # one line: the problem type, the schema violation, the exception
    request: str  # a curl command with the token as $TOKEN


@dataclass
class Report:
    caller: str
    examples: int = 0
    coverage_cases: int = 0
    operations: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    findings: dict[tuple[str, str, int | None, str], Finding] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    out_of_time: int = 0  # examples generated but not sent: their operation's share of the budget was spent
    seconds: float = 0.0

    def add(self, finding: Finding) -> None:
        """Keeps one finding per (operation, kind, status, what), with the shortest request seen."""
        key = (finding.operation, finding.kind, finding.status, finding.what)
        known = self.findings.get(key)
        if known is None or len(finding.request) < len(known.request):
            self.findings[key] = finding

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for f in self.findings.values():
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
        failing = len({f.operation for f in self.findings.values()})
        answers = ", ".join(f"{s}×{n}" for s, n in sorted(self.statuses.items()))
        return (
            f"fuzz as {self.caller}: {len(self.operations)} operations ({len(self.excluded)} excluded), "
            f"{self.examples} generated examples ({self.out_of_time} not sent for time) and "
            f"{self.coverage_cases} coverage cases, {len(self.findings)} distinct failures ({by_kind}) "
            f"in {failing} operations, {self.seconds:.0f} s; answers {answers}"
        )

    def details(self) -> str:
        """One paragraph per distinct failure: the operations that showed it and the shortest request."""
        groups: dict[tuple[str, int | None, str], list[Finding]] = {}
        for f in self.findings.values():
            groups.setdefault((f.kind, f.status, f.what), []).append(f)
        lines = []
        for (kind, status, what), found in sorted(
            groups.items(), key=lambda g: (g[0][0], g[0][1] or 0, g[0][2])
        ):
            shortest = min(found, key=lambda f: len(f.request))
            operations = ", ".join(sorted(f.operation for f in found))
            lines.append(f"[{kind}] {status if status is not None else '-'} {what}")
            lines.append(f"    in {len(found)} operation(s): {operations}")
            lines.append(f"    e.g. {shortest.request}")
        return "\n".join(lines)


def _path_ids(operation: Operation, ids: dict[str, str]) -> dict[str, str] | None:
    """Real values for every path parameter of `operation`, or None if one has no seeded counterpart."""
    names = re.findall(r"{(\w+)}", operation.path)
    if not names:
        return None
    segments = operation.path.split("/")
    values: dict[str, str] = {}
    for name in names:
        if name == "ident":
            before = segments[segments.index("{ident}") - 1]
            key = _COLLECTION_IDS.get(before)
        else:
            key = _NAMED_IDS.get(name)
        if key is not None and key in ids:
            values[name] = ids[key]
        elif name in _FIXED:
            values[name] = _FIXED[name]
        else:
            return None
    return values


def _strategy(operation: Operation, ids: dict[str, str]) -> st.SearchStrategy[AnyCase]:
    """Valid data, schema-violating data, and (where the path names seeded things) valid data on real ids,
    which reaches past the 404 into the code that reads and writes."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    with contextlib.suppress(Exception):  # an operation with nothing to negate has valid data only
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    real = _path_ids(operation, ids)
    if real is not None:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
    return st.one_of(strategies)


def _curl(case: AnyCase, base_url: str, auth: dict[str, str]) -> str:
    try:
        command = case.as_curl_command(headers=auth, base_url=base_url)
    except Exception as exc:  # a request curl cannot express (it is reported anyway)
        command = f"{case.operation.label} path={case.path_parameters} query={case.query} body={case.body!r}"
        command += f" ({type(exc).__name__})"
    token = auth["Authorization"].split()[-1]
    return command.replace(token, "$TOKEN").split("\n\n")[0]  # without schemathesis' notes


def _problem_type(response: schemathesis.Response) -> str:
    try:
        body = response.json()
    except Exception:
        return response.text[:120].replace("\n", " ") or "(empty body)"
    if isinstance(body, dict):
        return str(body.get("type", "")).rsplit("/", 1)[-1] or str(body)[:120]
    return str(body)[:120]


def _is_problem(response: schemathesis.Response) -> bool:
    if _media_type(response) != PROBLEM_JSON:
        return False
    try:
        body = response.json()
    except Exception:
        return False
    return (
        isinstance(body, dict)
        and body.get("status") == response.status_code
        and bool(body.get("title_zh"))
        and bool(body.get("title_en"))
    )


def _media_type(response: schemathesis.Response) -> str | None:
    values = response.headers.get("content-type")
    return values[0].split(";")[0].strip().lower() if values else None


def _schema_failures(case: AnyCase, response: schemathesis.Response) -> list[str]:
    documented = case.operation.schema.get_content_types(case.operation, response)
    sent = _media_type(response)
    if documented and sent not in documented:
        # the body would be judged against the schema of another media type
        return [f"content type {sent}, documented {', '.join(documented)}"]
    try:
        case.operation.validate_response(response, case=case)
    except FailureGroup as group:
        return [_one_line(f) for f in group.exceptions]
    except CheckFailure as failure:
        return [_one_line(failure)]
    return []


def _one_line(failure: CheckFailure) -> str:
    lines = [line.strip() for line in failure.message.splitlines() if line.strip()]
    return f"{failure.title}: " + " | ".join(lines[:3])[:240]


def judge(case: AnyCase, response: schemathesis.Response) -> list[tuple[str, str]]:
    """(kind, what) for everything wrong with one answer; empty if it is fine."""
    status = response.status_code
    if status >= 500:
        return [("server error", _problem_type(response))]
    if case.operation.responses.find_by_status_code(status) is None:
        if 400 <= status < 500 and _is_problem(response):
            return []
        return [("undocumented status", f"{_media_type(response)}: {_problem_type(response)}")]
    return [("response schema", what) for what in _schema_failures(case, response)]


def fuzz(
    base_url: str,
    caller: str,
    auth: dict[str, str],
    ids: dict[str, str],
    examples: int,
    seed: int | None,
    budget_seconds: float,
    coverage: bool = False,
) -> Report:
    """The coverage cases of every operation if `coverage` (their number is fixed by the document),
    then `examples` generated requests per operation. An operation that finds its share of
    `budget_seconds` (plus what earlier ones left) spent sends no more: a safety net for slow machines,
    not a limit a normal run reaches."""
    # no schemathesis.toml is read (the run is the same everywhere), and requests are shown unmasked:
    # the only secret in them is the token, which _curl replaces by $TOKEN
    config = schemathesis.Config.from_dict({"output": {"sanitization": {"enabled": False}}})
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)
    operations: list[Operation] = []
    report = Report(caller)
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            report.add(Finding("(document)", "harness", None, str(result.err())[:240], ""))
            continue
        operation = result.ok()
        if operation.label in EXCLUDED:
            report.excluded.append(operation.label)
        else:
            operations.append(operation)
    report.operations = [o.label for o in operations]
    started = time.monotonic()
    with requests.Session() as session:
        for operation in operations if coverage else []:
            _cover_operation(operation, session, base_url, auth, report)
        fuzzing = time.monotonic()
        for n, operation in enumerate(operations, 1):
            # each operation may use what the ones before it left of their share
            deadline = fuzzing + budget_seconds * n / len(operations)
            _fuzz_operation(operation, session, base_url, auth, ids, examples, seed, deadline, report)
    report.seconds = time.monotonic() - started
    return report


def _send(
    case: AnyCase, session: requests.Session, base_url: str, auth: dict[str, str], report: Report
) -> None:
    label = case.operation.label
    try:
        response = case.call(base_url=base_url, session=session, headers=auth, timeout=15)
    except Exception as exc:
        report.add(Finding(label, "harness", None, _exception(exc), _curl(case, base_url, auth)))
        return
    report.statuses[response.status_code] += 1
    for kind, what in judge(case, response):
        report.add(Finding(label, kind, response.status_code, what, _curl(case, base_url, auth)))


def _exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def _cover_operation(
    operation: Operation, session: requests.Session, base_url: str, auth: dict[str, str], report: Report
) -> None:
    schema = operation.schema
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    try:
        config = schema.config.generation_for(operation=operation)
        for case in schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=config):
            report.coverage_cases += 1
            _send(case, session, base_url, auth, report)
    except Exception as exc:  # the edge cases could not be built: say so, fuzz the operation anyway
        report.add(Finding(operation.label, "harness", None, _exception(exc), ""))


def _fuzz_operation(
    operation: Operation,
    session: requests.Session,
    base_url: str,
    auth: dict[str, str],
    ids: dict[str, str],
    examples: int,
    seed: int | None,
    deadline: float,
    report: Report,
) -> None:
    def one(case: AnyCase) -> None:
        if time.monotonic() > deadline:
            report.out_of_time += 1
            return
        report.examples += 1
        _send(case, session, base_url, auth, report)

    test: Any = given(case=_strategy(operation, ids))(one)
    test = hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=seed is None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )(test)
    if seed is not None:
        test = hypothesis.seed(seed)(test)
    try:
        test()
    except Exception as exc:  # generation itself failed: say so, go on with the next operation
        report.add(Finding(operation.label, "harness", None, _exception(exc), ""))
