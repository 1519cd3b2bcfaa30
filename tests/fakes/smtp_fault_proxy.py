#!/usr/bin/python3
"""smtp_fault_proxy.py - an SMTP proxy that injects replies, for tests.

Run with /usr/bin/python3 (stdlib only):

    smtp_fault_proxy.py --upstream 127.0.0.1:1025 [--listen 0] [--control 0]
                        [--parent-pid PID]

It listens on 127.0.0.1:LISTEN and, per client connection, opens one
connection to the real SMTP sink (UPSTREAM). Once both ports are bound it
prints one line to stdout and flushes it:

    READY <smtp-port> <control-port>

Commands are handled strictly one at a time: a client line is forwarded, the
upstream's complete reply (all "250-" lines up to the "250 " one) is read and
passed back, and only then is the next client line read. A pipelining client
thus still gets its replies in order, and an injected reply can never overtake
an upstream one. After a 354 reply to DATA every line is passed through
untouched (dot-stuffing included) up to the lone "." line, whose reply comes
from upstream. So mail that is not faulted ends up in the real sink.

Faults are set on the control port (127.0.0.1:CONTROL), a line protocol; each
command is one line, each answer one line starting "ok" or "error":

    fault VERB COUNT MATCH REPLY...
        Answer the next COUNT commands with verb VERB (MAIL, RCPT or DATA, or
        any other SMTP verb) whose command line contains MATCH (case-
        insensitive; "*" matches all) with REPLY, e.g.
            fault RCPT 1 temp@ 451 4.3.0 try again later
            fault RCPT 2 * 550 5.1.1 no such user
        without forwarding the command upstream. Rules are tried in the order
        they were added; a rule is dropped once used COUNT times.
    hold        new client connections wait (no greeting yet) until "release"
    release     let waiting and new connections proceed
    clear       drop all rules (does not release)
    stats       "ok sessions=N forwarded=N faulted=N"
    quit        stop the proxy (exit code 0)

With --parent-pid the proxy exits when that process is gone (so a crashed
test does not leave it behind).
"""

import argparse
import asyncio
import os
import sys

LINE_LIMIT = 1 << 20


class State:
    def __init__(self, upstream):
        self.upstream = upstream
        self.rules = []  # [verb(bytes), remaining(int), match(bytes|None), reply(bytes)]
        self.sessions = 0
        self.forwarded = 0
        self.faulted = 0
        self.stop = None  # asyncio.Event, set by "quit"
        self.released = None  # asyncio.Event, cleared by "hold"

    def take_fault(self, verb, line):
        low = line.lower()
        for rule in self.rules:
            rverb, _, match, reply = rule
            if rverb != verb or (match is not None and match not in low):
                continue
            rule[1] -= 1
            if rule[1] <= 0:
                self.rules.remove(rule)
            self.faulted += 1
            return reply
        return None


def verb_of(line):
    """b"RCPT TO:<a@b>" -> b"RCPT"; b"data" -> b"DATA"."""
    word = line.split(b" ", 1)[0]
    return word.split(b":", 1)[0].upper()


async def read_reply(reader):
    """A complete SMTP reply (possibly multi-line) as bytes; b"" on EOF."""
    out = b""
    while True:
        line = await reader.readline()
        if not line:
            return b""
        out += line
        if len(line) < 4 or line[3:4] != b"-":
            return out


async def close_writer(w):
    try:
        w.close()
        await w.wait_closed()
    except (ConnectionError, OSError):
        pass


async def smtp_session(state, creader, cwriter):
    state.sessions += 1
    await state.released.wait()
    host, port = state.upstream
    try:
        ureader, uwriter = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
    except OSError as e:
        cwriter.write(b"421 4.3.0 proxy: upstream unreachable: %s\r\n" % str(e).encode())
        await close_writer(cwriter)
        return
    try:
        greeting = await read_reply(ureader)
        if not greeting:
            return
        cwriter.write(greeting)
        await cwriter.drain()
        while True:
            line = await creader.readline()
            if not line:
                return
            cmd = line.rstrip(b"\r\n")
            verb = verb_of(cmd)
            reply = state.take_fault(verb, cmd)
            if reply is not None:
                cwriter.write(reply + b"\r\n")
                await cwriter.drain()
                continue
            state.forwarded += 1
            uwriter.write(line)
            await uwriter.drain()
            reply = await read_reply(ureader)
            if not reply:
                return
            cwriter.write(reply)
            await cwriter.drain()
            if verb == b"DATA" and reply.startswith(b"354"):
                while True:
                    data = await creader.readline()
                    if not data:
                        return
                    uwriter.write(data)
                    if data in (b".\r\n", b".\n"):
                        break
                    if uwriter.transport.get_write_buffer_size() > 65536:
                        await uwriter.drain()
                await uwriter.drain()
                reply = await read_reply(ureader)
                if not reply:
                    return
                cwriter.write(reply)
                await cwriter.drain()
            elif verb == b"QUIT":
                return
    except (ConnectionError, OSError, asyncio.LimitOverrunError, ValueError):
        return
    finally:
        await close_writer(uwriter)
        await close_writer(cwriter)


def control_command(state, line):
    parts = line.strip().split(None, 4)
    if not parts:
        return "error empty command"
    cmd = parts[0].lower()
    if cmd == "fault":
        if len(parts) < 5:
            return "error usage: fault VERB COUNT MATCH REPLY..."
        try:
            count = int(parts[2])
        except ValueError:
            return "error COUNT must be a number"
        reply = parts[4]
        if count < 1 or len(reply) < 3 or not reply[:3].isdigit():
            return "error COUNT >= 1 and a REPLY starting with a 3-digit code expected"
        match = None if parts[3] == "*" else parts[3].lower().encode()
        state.rules.append([parts[1].upper().encode(), count, match, reply.encode()])
        return "ok"
    if cmd == "hold":
        state.released.clear()
        return "ok"
    if cmd == "release":
        state.released.set()
        return "ok"
    if cmd == "clear":
        state.rules.clear()
        return "ok"
    if cmd == "stats":
        return "ok sessions=%d forwarded=%d faulted=%d" % (
            state.sessions, state.forwarded, state.faulted)
    if cmd == "quit":
        state.stop.set()
        return "ok"
    return "error unknown command %r" % cmd


async def control_session(state, reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            answer = control_command(state, line.decode("utf-8", "replace"))
            writer.write(answer.encode() + b"\n")
            await writer.drain()
    except (ConnectionError, OSError, ValueError):
        pass
    finally:
        await close_writer(writer)


async def watch_parent(pid, stop):
    while not stop.is_set():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stop.set()
            return
        except PermissionError:
            pass
        await asyncio.sleep(0.5)


async def main():
    ap = argparse.ArgumentParser(description="SMTP fault-injecting proxy (tests)")
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the real SMTP sink")
    ap.add_argument("--listen", type=int, default=0, help="SMTP port (0 = any free)")
    ap.add_argument("--control", type=int, default=0, help="control port (0 = any free)")
    ap.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    args = ap.parse_args()
    host, _, port = args.upstream.rpartition(":")
    state = State((host or "127.0.0.1", int(port)))
    state.stop = asyncio.Event()
    state.released = asyncio.Event()
    state.released.set()

    smtp = await asyncio.start_server(lambda r, w: smtp_session(state, r, w), "127.0.0.1",
                                      args.listen, limit=LINE_LIMIT)
    ctl = await asyncio.start_server(lambda r, w: control_session(state, r, w), "127.0.0.1",
                                     args.control)
    sys.stdout.write("READY %d %d\n" % (smtp.sockets[0].getsockname()[1],
                                        ctl.sockets[0].getsockname()[1]))
    sys.stdout.flush()
    if args.parent_pid > 0:
        asyncio.ensure_future(watch_parent(args.parent_pid, state.stop))
    await state.stop.wait()
    smtp.close()
    ctl.close()
    await smtp.wait_closed()
    await ctl.wait_closed()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
