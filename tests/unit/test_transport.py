"""The transport's calls, on a fake stub: the request each sends and what it makes of the
answer (no etcd, no network: a channel to a closed port is never used)."""

from __future__ import annotations

from types import SimpleNamespace

from etcd3 import etcdrpc

from etcdlab.etcd.transport import Member


class RecordingStub:
    """A stub whose every method records (name, request, keyword arguments) and answers
    ``answer``."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.calls: list[tuple[str, object, dict]] = []

    def __getattr__(self, name: str):
        def call(request: object, **options: object) -> object:
            self.calls.append((name, request, options))
            return self.answer
        return call


def test_member_names_asks_member_list_with_the_members_timeout():
    answer = etcdrpc.MemberListResponse(members=[
        etcdrpc.Member(ID=0x1A, name="node1"), etcdrpc.Member(ID=0x2B, name="")])
    with Member("127.0.0.1:1", "", timeout=5.0) as one:
        one.cluster = RecordingStub(answer)
        assert one.member_names() == {0x1A: "node1", 0x2B: ""}
        assert one.member_names(timeout=0.5) == {0x1A: "node1", 0x2B: ""}
        calls = one.cluster.calls
    assert [(name, type(request)) for name, request, _ in calls] == [
        ("MemberList", etcdrpc.MemberListRequest)] * 2
    assert [options for _, _, options in calls] == [{"timeout": 5.0, "metadata": None},
                                                    {"timeout": 0.5, "metadata": None}]


def test_time_to_live_and_revoke_send_the_lease_id_with_the_given_timeout():
    with Member("127.0.0.1:1", "", timeout=2.0) as one:
        one.lease = RecordingStub(SimpleNamespace(TTL=7))
        assert one.time_to_live(42, timeout=3.0) == 7
        one.revoke(42, timeout=3.0)
        calls = one.lease.calls
    assert [(name, request.ID, options["timeout"]) for name, request, options in calls] == [
        ("LeaseTimeToLive", 42, 3.0), ("LeaseRevoke", 42, 3.0)]


def test_move_leader_and_status_ask_maintenance_with_the_given_timeout():
    with Member("127.0.0.1:1", "", timeout=2.0) as one:
        one.maintenance = RecordingStub(SimpleNamespace(leader=0x2B))
        one.move_leader(0x2B, timeout=10)
        assert one.status(timeout=0.3).leader == 0x2B
        calls = one.maintenance.calls
    assert [(name, options["timeout"]) for name, _, options in calls] == [
        ("MoveLeader", 10), ("Status", 0.3)]
    assert calls[0][1] == etcdrpc.MoveLeaderRequest(targetID=0x2B)
