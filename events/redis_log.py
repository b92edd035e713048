"""Event log on Redis Streams, shared by every worker and host that opens the same URL.

Keys (``<stream>`` defaults to ``mlops:events``, set with ``?stream=`` in the URL):
``<stream>`` the stream, entry id ``<seq>-0`` and one field ``e`` holding the envelope JSON;
``<stream>:seq`` the last seq; ``<stream>:epoch`` the epoch; ``<stream>:bytes`` the bytes of the
envelopes the stream holds. One Lua script assigns the seq, renews the epoch when the history is gone
(flushed or restarted Redis, deleted stream), XADDs, and trims the oldest entries past the count or byte
bound, so appends from many processes are atomic and ordered.

Streams have no byte bound of their own, so the script keeps one: ``<stream>:bytes`` is changed only
inside that script, by the size of each entry it adds or trims, and Redis runs one script at a time,
so with any number of appending processes it always equals the sum of the kept envelopes. The sizes
of trimmed entries are read back with XRANGE (never estimated), which is also why the script trims
with an exact XTRIM MINID of its own rather than ``MAXLEN ~`` (whose removals it could not count).
When the counter is missing beside an existing stream (a stream written before the counter existed,
or the key evicted), the script sums the stream once to rebuild it.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import redis

from events.log import DEFAULT_MAX_BYTES, Event, EventLog, EventLogUnavailable, Gap, position_gap
from events.serialize import dumps, iso_utc, parse_iso, utc_now

_APPEND = """
local stream, seqkey, epochkey, byteskey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local max_events, max_bytes = tonumber(ARGV[2]), tonumber(ARGV[6])
local had_stream = redis.call('EXISTS', stream) == 1
local epoch = redis.call('GET', epochkey)
if (not epoch) or (not had_stream and redis.call('EXISTS', seqkey) == 1) then
  epoch = ARGV[1]
  redis.call('SET', epochkey, epoch)
  redis.call('DEL', seqkey)
end
local held = 0
if had_stream then
  held = tonumber(redis.call('GET', byteskey))
  if not held then
    held = 0
    local after = '-'
    repeat
      local batch = redis.call('XRANGE', stream, after, '+', 'COUNT', 100)
      for _, entry in ipairs(batch) do
        held = held + #entry[2][2]
        after = '(' .. entry[1]
      end
    until #batch < 100
  end
end
local seq = redis.call('INCR', seqkey)
local raw = '{"seq":' .. seq .. ',"epoch":"' .. epoch .. '","type":"' .. ARGV[3] ..
            '","ts":"' .. ARGV[5] .. '","data":' .. ARGV[4] .. '}'
redis.call('XADD', stream, seq .. '-0', 'e', raw)
held = held + #raw
local kept = redis.call('XLEN', stream)
local last_cut, after = nil, '-'
while kept > 1 and (kept > max_events or held > max_bytes) do
  local want = kept - max_events
  if held > max_bytes then
    want = math.max(want, math.ceil((held - max_bytes) * kept / held))
  end
  local batch = redis.call('XRANGE', stream, after, '+', 'COUNT', math.min(math.max(want, 1), 100))
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    if kept <= 1 or (kept <= max_events and held <= max_bytes) then break end
    held = held - #entry[2][2]
    kept = kept - 1
    last_cut = entry[1]
  end
  after = '(' .. last_cut
end
if last_cut then
  -- ids are <seq>-0, so MINID <seq>-1 removes everything up to and including last_cut
  redis.call('XTRIM', stream, 'MINID', string.match(last_cut, '^%d+') .. '-1')
end
redis.call('SET', byteskey, held)
return {epoch, seq, raw}
"""

_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or (not holder and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def _split_url(url: str) -> tuple[str, str]:
    """The redis-py URL and the stream name (our own ``stream`` query parameter)."""
    parts = urlparse(url)
    query = parse_qsl(parts.query)
    stream = next((v for k, v in query if k == "stream"), "mlops:events")
    rest = urlencode([(k, v) for k, v in query if k != "stream"])
    return urlunparse(parts._replace(query=rest)), stream


def _age_s(ts: str) -> float:
    return (utc_now() - parse_iso(ts)).total_seconds()


class RedisEventLog(EventLog):
    def __init__(
        self, url: str, max_events: int, max_age_s: float, max_bytes: int = DEFAULT_MAX_BYTES, block_s: float = 1.0
    ):
        super().__init__(max_events, max_age_s, max_bytes)
        redis_url, self.stream = _split_url(url)
        self.url = url
        self._keys = [self.stream, f"{self.stream}:seq", f"{self.stream}:epoch", f"{self.stream}:bytes"]
        common = {"decode_responses": True, "socket_connect_timeout": 2.0, "health_check_interval": 10}
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5.0, **common)
        # Blocking reads get their own pool so a long XREAD never holds a connection appends need.
        self._blocking = redis.Redis.from_url(redis_url, socket_timeout=block_s + 5.0, **common)
        self._script = self._redis.register_script(_APPEND)
        self._lease = self._redis.register_script(_LEASE)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise EventLogUnavailable(f"Redis at {self.describe()} is unreachable: {exc}") from exc

    def _append(self, kind: str, data: dict[str, Any]) -> Event:
        ts = iso_utc(utc_now())
        args = [uuid.uuid4().hex, self.max_events, kind, dumps(data), ts, self.max_bytes]
        epoch, seq, raw = self._call(self._script, keys=self._keys, args=args)
        return Event(int(seq), epoch, kind, ts, data, raw)

    def head(self) -> tuple[str, int]:
        epoch, seq = self._call(self._redis.mget, self._keys[2], self._keys[1])
        if epoch is None:
            # No history yet: agree on an epoch now so readers and the first appender share it.
            self._call(self._redis.set, self._keys[2], uuid.uuid4().hex, nx=True)
            epoch, seq = self._call(self._redis.mget, self._keys[2], self._keys[1])
        return epoch, int(seq or 0)

    def _checked(self, entries, seq: int, epoch: str | None, cur_epoch: str, last: int) -> list[Event] | Gap:
        events = [Event.from_raw(fields["e"]) for _id, fields in entries]
        if events and (events[0].seq != seq + 1 or any(e.epoch != cur_epoch for e in events)):
            return Gap(cur_epoch, last, "history no longer reaches back that far")
        if events and _age_s(events[0].ts) > self.max_age_s:
            return Gap(cur_epoch, last, "history older than the age limit")
        return events

    def read_after(self, seq: int, epoch: str | None, limit: int = 1000) -> list[Event] | Gap:
        cur_epoch, last = self.head()
        if gap := position_gap(seq, epoch, cur_epoch, last):
            return gap
        if seq == last:
            return []
        entries = self._call(self._redis.xrange, self.stream, min=f"({seq}-0", max="+", count=limit)
        if not entries:
            return Gap(cur_epoch, last, "history no longer reaches back that far")
        return self._checked(entries, seq, epoch, cur_epoch, last)

    def recent(self, limit: int) -> tuple[str, int, list[Event]]:
        epoch, last = self.head()
        entries = self._call(self._redis.xrevrange, self.stream, max=f"{last}-0", min="-", count=limit)
        events = [Event.from_raw(fields["e"]) for _id, fields in reversed(entries)]
        return epoch, last, [e for e in events if e.epoch == epoch and _age_s(e.ts) <= self.max_age_s]

    def usage(self) -> tuple[int, int]:
        pipe = self._redis.pipeline(transaction=True)  # one MULTI: the count and bytes of one moment
        kept, held = self._call(pipe.xlen(self.stream).get(self._keys[3]).execute)
        return kept, int(held or 0) if kept else 0

    def wait_after(self, seq: int, epoch: str | None, timeout: float) -> list[Event] | Gap:
        cur_epoch, last = self.head()
        if gap := position_gap(seq, epoch, cur_epoch, last):
            return gap
        if last == seq:
            reply = self._call(
                self._blocking.xread, {self.stream: f"{seq}-0"}, count=1000, block=max(1, int(timeout * 1000))
            )
            entries = reply[0][1] if reply else []
            if not entries:
                return []
            cur_epoch = Event.from_raw(entries[0][1]["e"]).epoch
            if epoch is not None and cur_epoch != epoch:
                return Gap(cur_epoch, self.head()[1], "epoch changed")
            return self._checked(entries, seq, epoch, cur_epoch, seq + len(entries))
        return self.read_after(seq, epoch)

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        key = f"{self.stream}:lease:{name}"
        return bool(self._call(self._lease, keys=[key], args=[owner, max(1, int(ttl_s * 1000))]))

    def ping(self) -> None:
        self._call(self._redis.ping)

    def close(self) -> None:
        self._redis.close()
        self._blocking.close()

    def describe(self) -> str:
        parts = urlparse(self.url)
        host = parts.hostname or "localhost"
        return f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path or '/0'} stream {self.stream}"

    def delete_history(self) -> None:
        """Remove the stream and its counters (tests and ``reset`` tooling); the next append starts a new epoch."""
        self._call(self._redis.delete, *self._keys)

