"""The lane's figures: one dict (written as JSON with --report) and the table printed at the
end of every run."""

import time
from typing import List

from auditor import failures
from schedule import NATIVE_CLIENTS, SIO_CLIENTS
from watchers import MEMORY_BUDGET_MB, PRESENCE_BOUND


def figures(args, lab, injector, result: dict, inbox: dict, presence: dict, memory, short: List[str]) -> dict:
    delivery, history = result["delivery"], result["history"]
    problems = failures(result)
    if short:
        problems.append(f"clients that never got the final marks: {short}")
    for key in ("missing", "unexpected", "count_mismatches", "read_mismatches", "chat_missing", "chat_duplicated",
                "chat_unread_mismatch"):
        if inbox[key]:
            problems.append(f"inbox {key}: {inbox[key]}")
    if presence["converged_s"] is None:
        problems.append(f"presence did not converge within {PRESENCE_BOUND:.0f}s of the last fault: ghosts "
                        f"{presence['ghosts']}, missing {presence['missing']}")
    if presence["final_ghosts"] or presence["final_missing"]:
        problems.append(f"presence at the end: ghosts {presence['final_ghosts']}, "
                        f"missing {presence['final_missing']}")
    if lab.publisher.positionless:
        problems.append(f"{len(lab.publisher.positionless)} publishes acknowledged without their channel's "
                        f"position, e.g. {lab.publisher.positionless[0]}")
    peaks = memory.peaks_mb()
    over = {n: mb for n, mb in peaks.items() if mb > MEMORY_BUDGET_MB}
    if over:
        problems.append(f"memory over the {MEMORY_BUDGET_MB} MB budget: {over}")
    publisher = lab.publisher
    notes = result["client_notes"]
    return {
        "seed": args.seed, "broker": args.broker, "minutes": args.minutes, "binary": lab.binary_info,
        "elapsed_s": round(time.monotonic() - lab.t0, 1), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "nodes": len(lab.nodes), "clients": {"native": NATIVE_CLIENTS, "socket.io": SIO_CLIENTS,
                                             "ghosts": len(lab.ghosts.all)},
        "faults": dict(sorted(injector.counts.items())), "faults_total": sum(injector.counts.values()),
        "fault_notes": injector.notes,
        "published": {"acked": len(publisher.acked), "unacked": len(publisher.unacked),
                      "unacked_stored": history.get("unacked_stored", 0), "by_mechanism": publisher.by_mechanism},
        "positionless_acks": lab.publisher.positionless[:20],
        "delivered": delivery.get("delivered", 0), "lost": delivery.get("lost", 0),
        "lost_past_4009": delivery.get("lost_past_4009", 0),
        "duplicated": delivery.get("duplicated", 0), "duplicated_same_seq": delivery.get("duplicated_same_seq", 0), "out_of_order": delivery.get("out_of_order", 0),
        "phantom": delivery.get("phantom", 0), "mismatched": delivery.get("mismatched", 0),
        "unrecovered": delivery.get("unrecovered", 0),
        "unrecovered_reports": notes.get("unrecovered_reports", 0),
        "closes_4009": notes.get("close_4009", 0), "closes_4008": notes.get("close_4008", 0),
        "resumes": notes.get("resumes", 0), "sio_recovered": notes.get("recovered", 0),
        "sio_not_recovered": notes.get("not_recovered", 0), "client_notes": notes,
        "history": history, "inbox": inbox, "presence": presence, "presence_bound_s": PRESENCE_BOUND,
        "ghosts": len(set(presence["ghosts"]) | set(presence["final_ghosts"])), "peak_rss_mb": peaks, "memory_budget_mb": MEMORY_BUDGET_MB,
        "per_client": result["per_client"], "examples": result["examples"], "problems": problems, "pass": not problems,
    }


def print_table(r: dict) -> None:
    rows = [
        ("seed / broker / length", f"{r['seed']} / {r['broker']} / {r['minutes']:g} min requested, "
                                   f"{r['elapsed_s']:.0f} s wall"),
        ("binary", f"{r['binary']['path']} (built {r['binary']['modified']})"),
        ("clients", f"{r['clients']['native']} native, {r['clients']['socket.io']} socket.io, "
                    f"{r['clients']['ghosts']} ghosts"),
        ("faults injected", f"{r['faults_total']}: " + ", ".join(f"{k} {v}" for k, v in r["faults"].items())),
        ("events published (acked)", f"{r['published']['acked']} "
                                     + str(r["published"]["by_mechanism"]).replace("'", "")),
        ("publishes not acked", f"{r['published']['unacked']} (of which stored anyway: "
                                f"{r['published']['unacked_stored']})"),
        ("deliveries checked", r["delivered"]),
        ("lost (must be 0)", f"{r['lost']} (behind a 4009 close whose resume reported nothing: "
                             f"{r['lost_past_4009']})"),
        ("duplicated (must be 0)", f"{r['duplicated']} (the same position twice: {r['duplicated_same_seq']}; "
                                   f"the rest, one publish stored at several positions)"),
        ("out of order (must be 0)", r["out_of_order"]),
        ("reported unrecovered", f"{r['unrecovered']} events in {r['unrecovered_reports']} reports "
                                 f"(4009 closes {r['closes_4009']}, 4008 closes {r['closes_4008']})"),
        ("resumes / socket.io recoveries", f"{r['resumes']} native; socket.io {r['sio_recovered']} recovered, "
                                           f"{r['sio_not_recovered']} not"),
        ("history", f"{r['history'].get('events', 0)} events kept; duplicate seqs "
                    f"{r['history'].get('history_duplicate_seq', 0)}, acked missing "
                    f"{r['history'].get('acked_missing_from_history', 0)}"),
        ("inbox", f"{r['inbox']['notifications_acked']} notifications, {r['inbox']['alerts_acked']} alerts, "
                  f"{r['inbox']['reads_acked']} reads; missing {r['inbox']['missing']}, "
                  f"count mismatches {r['inbox']['count_mismatches']}"),
        ("chat", f"{r['inbox']['chat_acked']} messages acknowledged ({r['inbox']['chat_uncertain']} unanswered), "
                 f"{r['inbox']['chat_stored']} stored; missing {r['inbox']['chat_missing']}, duplicated "
                 f"{r['inbox']['chat_duplicated']}, unread mismatches {r['inbox']['chat_unread_mismatch']}"),
        ("presence", f"converged {r['presence']['converged_s']} s after the last fault (bound "
                     f"{r['presence_bound_s']:.0f} s) over {r['presence']['users']} users; presence:offline "
                     f"events seen by clients {r['client_notes'].get('presence_offline_seen', 0)}"),
        ("clients' presence view", f"{r['client_notes'].get('view_judged', 0)} (client, user) pairs judged at the end: "
                                   f"stale offline {r['client_notes'].get('view_stale_offline', 0)}, ghosts "
                                   f"{r['client_notes'].get('view_ghosts', 0)} (must be 0)"),
        ("ghosts (must be 0)", r["ghosts"]),
        ("peak RSS per node (MB)", ", ".join(f"{n} {mb}" for n, mb in r["peak_rss_mb"].items())
                                   + f" (budget {r['memory_budget_mb']})"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n== chaos lane figures")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    for note in r["fault_notes"]:
        print(f"  - {note}")
    if r["problems"]:
        print("\nexamples:")
        for example in r["examples"][:20]:
            print(f"  - {example}")
        print("\nFAILED:")
        for problem in r["problems"]:
            print(f"  - {problem}")
    else:
        print("\nPASSED")
