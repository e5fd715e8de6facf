"""Pure evaluation: registry + profile + check results → phase verdicts, blockers and actions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from devenv.checks.ids import ordered, service_checks
from devenv.model import CheckResult, Profile
from devenv.phases.registry import Part, Phase, Registry

# regressed: the registry says complete, live evidence says otherwise
Verdict = Literal["complete", "can-proceed", "blocked", "regressed"]
BlockerKind = Literal["decision", "later", "unknown"]
# Report sections: decisions, external provisioning, deployment/DNS/TLS, repo-auditable unknowns.
BlockerCategory = Literal["decision", "provisioning", "deployment", "repo"]


@dataclass(frozen=True)
class PartVerdict:
    status: Verdict
    blocked_by: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class PhaseVerdict:
    id: str
    name: str
    local: PartVerdict
    production: PartVerdict
    needs: tuple[str, ...] = ()

    def part(self, part: Part) -> PartVerdict:
        return self.local if part == "local" else self.production


@dataclass(frozen=True)
class BlockerStatus:
    id: str
    kind: BlockerKind
    what: str
    category: BlockerCategory
    resolved: bool
    by: str | None
    blocks: tuple[str, ...] = ()  # phase ids that list it
    note: str = ""  # the choice, the local stand-in, or the follow-up action


@dataclass(frozen=True)
class ActionStatus:
    what: str
    phase: str
    part: Part
    status: Verdict
    blocked_by: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Evaluation:
    phases: tuple[PhaseVerdict, ...]
    blockers: tuple[BlockerStatus, ...]
    actions: tuple[ActionStatus, ...]

    def phase(self, phase_id: str) -> PhaseVerdict:
        for verdict in self.phases:
            if verdict.id == phase_id:
                return verdict
        raise KeyError(phase_id)

    def blocker(self, blocker_id: str) -> BlockerStatus:
        for blocker in self.blockers:
            if blocker.id == blocker_id:
                return blocker
        raise KeyError(blocker_id)


def evaluate(registry: Registry, profile: Profile, checks: Sequence[CheckResult]) -> Evaluation:
    """Compute every phase's local and production verdict from live evidence.

    A LATER item is resolved for this run when the profile binds its service to the "external"
    provider and that service's checks (``postgres.*``, ``objectstore.*``) ran and all passed;
    an item closed by a decision (``resolved_by``) is always resolved.

    Local part: "complete" when the registry says so and none of its ``local_checks`` failed
    (required) or was skipped because a service is down; "regressed" when the registry says
    complete but one did, blocked by those checks or root causes. Otherwise blocked by every
    undecided decision, every unresolved LATER item without a local stand-in, every prerequisite
    whose local part is blocked or regressed, every blocking unknown, every required check among
    its ``local_checks`` that failed or was not verified, and by a service that is down in place
    of the checks it explains; else "can-proceed". Advisory failures are evidence only. A
    prerequisite that can itself proceed locally does not hold the phase back.

    Production part: "complete" when the registry says so. Otherwise blocked by every unresolved
    LATER item, every undecided decision, every blocking unknown and every prerequisite whose
    production part is blocked; else "can-proceed".
    """
    by_id = {c.id: c for c in checks}
    resolution, open_because = _resolve_later(registry, profile, checks)
    verdicts: dict[str, PhaseVerdict] = {}

    def verdict(phase: Phase) -> PhaseVerdict:
        if phase.id not in verdicts:
            for need in phase.needs:
                verdict(registry.phase(need))
            verdicts[phase.id] = PhaseVerdict(
                id=phase.id,
                name=phase.name,
                local=_local(registry, phase, verdicts, resolution, by_id),
                production=_production(registry, phase, verdicts, resolution, open_because),
                needs=phase.needs,
            )
        return verdicts[phase.id]

    phases = tuple(verdict(p) for p in registry.phases)
    return Evaluation(
        phases=phases,
        blockers=_blockers(registry, resolution),
        actions=_actions(registry, verdicts, resolution),
    )


def _resolve_later(
    registry: Registry, profile: Profile, checks: Sequence[CheckResult]
) -> tuple[dict[str, str | None], dict[str, str]]:
    """LATER id → what resolves it for this run (None while open), and why open ones stay open."""
    resolved: dict[str, str | None] = {}
    open_because: dict[str, str] = {}
    for item in registry.later:
        resolved[item.id] = None
        if item.resolved_by is not None:
            resolved[item.id] = f"decision {item.resolved_by}"
            continue
        if item.service is None:
            continue  # nothing devenv runs can stand for this provider
        binding = profile.binding(item.service)
        if binding.provider != "external":
            open_because[item.id] = f"profile {profile.name} binds {item.service} to local"
            continue
        evidence = ordered(service_checks(item.service, checks))
        bad = [c.id for c in evidence if not c.ok or c.skipped]
        if not evidence:
            open_because[item.id] = f"{item.service} external but no {item.service} checks ran"
        elif bad:
            open_because[item.id] = f"{item.service} external but {', '.join(bad)} not ok"
        else:
            ids = ", ".join(c.id for c in evidence)
            resolved[item.id] = f"profile {profile.name}: {item.service} external, checks {ids} ok"
    return resolved, open_because


def _local(
    registry: Registry,
    phase: Phase,
    verdicts: Mapping[str, PhaseVerdict],
    resolution: Mapping[str, str | None],
    checks: Mapping[str, CheckResult],
) -> PartVerdict:
    failed, check_evidence, regressions = _check_evidence(phase, checks)
    if phase.local_complete:
        if not regressions:
            return PartVerdict("complete", evidence=("marked complete in the registry",))
        # Evidence wins: the registry's word is shown, but never as complete.
        return PartVerdict(
            "regressed",
            tuple(regressions),
            ("marked complete in the registry, but its live checks fail", *check_evidence),
        )
    blocked = [need for need in phase.needs if _held(verdicts[need].local)]
    evidence = [f"prerequisites blocked locally: {', '.join(blocked)}"] if blocked else []
    decisions = _undecided(registry, phase)
    blocked += decisions
    evidence += [f"{d} undecided" for d in decisions]
    covered: list[str] = []
    for later_id in phase.later:
        item = registry.later_item(later_id)
        if resolution[later_id] is not None:
            evidence.append(f"{later_id} resolved by {resolution[later_id]}")
        elif item.stand_in_exists:
            covered.append(f"{later_id} ({item.stand_in or 'stand-in'})")
        else:
            blocked.append(later_id)
            evidence.append(f"{later_id} ({item.what}) has no local stand-in")
    if covered:
        evidence.append(f"covered locally: {', '.join(covered)}")
    unknowns = _blocking_unknowns(registry, phase)
    blocked += unknowns
    evidence += [f"{u} open" for u in unknowns]
    blocked += [f for f in failed if f not in blocked]
    evidence += check_evidence
    return PartVerdict("blocked" if blocked else "can-proceed", tuple(blocked), tuple(evidence))


def _production(
    registry: Registry,
    phase: Phase,
    verdicts: Mapping[str, PhaseVerdict],
    resolution: Mapping[str, str | None],
    open_because: Mapping[str, str],
) -> PartVerdict:
    if phase.production_complete:
        return PartVerdict("complete", evidence=("marked complete in the registry",))
    blocked = [need for need in phase.needs if _held(verdicts[need].production)]
    evidence = [f"prerequisites blocked in production: {', '.join(blocked)}"] if blocked else []
    decisions = _undecided(registry, phase)
    blocked += decisions
    evidence += [f"{d} undecided" for d in decisions]
    open_items: list[str] = []
    for later_id in phase.later:
        if resolution[later_id] is not None:
            evidence.append(f"{later_id} resolved by {resolution[later_id]}")
            continue
        blocked.append(later_id)
        reason = open_because.get(later_id)
        open_items.append(f"{later_id} ({reason})" if reason else later_id)
    if open_items:
        evidence.append(f"open: {', '.join(open_items)}")
    unknowns = _blocking_unknowns(registry, phase)
    blocked += unknowns
    evidence += [f"{u} open" for u in unknowns]
    return PartVerdict("blocked" if blocked else "can-proceed", tuple(blocked), tuple(evidence))


def _held(part: PartVerdict) -> bool:
    """A prerequisite in this state holds its dependents back."""
    return part.status in ("blocked", "regressed")


def _check_evidence(
    phase: Phase, checks: Mapping[str, CheckResult]
) -> tuple[list[str], list[str], list[str]]:
    """For a phase's local checks: what blocks it, evidence lines, and what regresses it.

    A check skipped because a service is down blocks by that root cause (``backend.running``),
    once, not by its own id. A required failure blocks by its id; an advisory failure is only
    evidence. A check skipped for another reason (no session without the bypass) was not
    verified: it blocks a phase that is not complete yet, but does not regress a complete one.
    """
    ok: list[str] = []
    not_run: list[str] = []
    blocked: list[str] = []
    regressions: list[str] = []
    evidence: list[str] = []
    by_cause: dict[str, list[str]] = {}
    for check_id in phase.local_checks:
        check = checks.get(check_id)
        if check is None:
            not_run.append(check_id)
        elif check.skipped and check.cause:
            by_cause.setdefault(check.cause, []).append(check_id)
        elif check.skipped:
            blocked.append(check_id)
            evidence.append(f"{check_id} not verified (skipped): {check.detail}")
        elif check.ok:
            ok.append(check_id)
        elif check.level == "advisory":
            evidence.append(f"{check_id} failed (advisory, blocks nothing): {check.detail}")
        else:
            blocked.append(check_id)
            regressions.append(check_id)
            evidence.append(f"{check_id} failed: {check.detail}")
    for cause, ids in by_cause.items():
        blocked.append(cause)
        regressions.append(cause)
        detail = checks[cause].detail if cause in checks else ""
        evidence.append(f"{cause} failed ({detail}), so not verified: {', '.join(ids)}")
    if ok:
        evidence.append(f"checks ok: {', '.join(ok)}")
    if not_run:
        evidence.append(f"checks not run: {', '.join(not_run)}")
    return _unique(blocked), evidence, _unique(regressions)


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _undecided(registry: Registry, phase: Phase) -> list[str]:
    return [d for d in phase.decisions if not registry.decision(d).chosen]


def _blocking_unknowns(registry: Registry, phase: Phase) -> list[str]:
    return [u.id for u in registry.unknowns if phase.id in u.blocks and u.status != "resolved"]


def _blockers(
    registry: Registry, resolution: Mapping[str, str | None]
) -> tuple[BlockerStatus, ...]:
    out: list[BlockerStatus] = []
    for d in registry.decisions:
        holds = tuple(p.id for p in registry.phases if d.id in p.decisions)
        by = f"chosen: {d.choice}" if d.chosen else None
        out.append(
            BlockerStatus(d.id, "decision", d.name, "decision", d.chosen, by, holds, d.choice)
        )
    for item in registry.later:
        by = resolution[item.id]
        if item.resolved_by is not None:
            note = f"closed by {item.resolved_by}"
        elif item.stand_in_exists:
            note = f"local stand-in: {item.stand_in or 'yes'}"
        else:
            note = f"no local stand-in ({item.stand_in})" if item.stand_in else "no local stand-in"
        out.append(
            BlockerStatus(
                item.id, "later", item.what, item.category, by is not None, by, item.blocks, note
            )
        )
    for u in registry.unknowns:
        resolved = u.status == "resolved"
        note = f"{u.status} ({u.action})" if u.action else u.status
        out.append(
            BlockerStatus(
                u.id,
                "unknown",
                u.what,
                "repo",
                resolved,
                u.status if resolved else None,
                u.blocks,
                note,
            )
        )
    return tuple(out)


def _actions(
    registry: Registry,
    verdicts: Mapping[str, PhaseVerdict],
    resolution: Mapping[str, str | None],
) -> tuple[ActionStatus, ...]:
    out: list[ActionStatus] = []
    for action in registry.actions:
        part = verdicts[action.phase].part(action.part)
        if action.gated_by is None:
            status, blocked = part.status, part.blocked_by
        else:
            blocked = tuple(
                g for g in action.gated_by if not _settled(registry, g, verdicts, resolution)
            )
            status = "blocked" if blocked else "can-proceed"
        out.append(
            ActionStatus(action.what, action.phase, action.part, status, blocked, action.note)
        )
    return tuple(out)


def _settled(
    registry: Registry,
    ident: str,
    verdicts: Mapping[str, PhaseVerdict],
    resolution: Mapping[str, str | None],
) -> bool:
    if ident in resolution:
        return resolution[ident] is not None
    if ident in verdicts:
        return not _held(verdicts[ident].local)
    return registry.decision(ident).chosen
