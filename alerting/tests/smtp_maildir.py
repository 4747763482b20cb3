"""An SMTP server for the email tests: aiosmtpd's SMTP protocol with its
Mailbox handler, which writes every message it accepts to a Maildir (with
X-MailFrom and X-RcptTo, the envelope, added). Run with the python that
scripts/aiosmtpd.sh prints.

    python smtp_maildir.py serve <maildir> [port]
        Listens on 127.0.0.1; port 0 (the default) picks a free one. The first
        stdout line is {"port": <port>}. Exits when its stdin is a pipe and
        the pipe closes.
    python smtp_maildir.py dump <message file>
        Prints the message as JSON, parsed by the standard library: headers
        (lower-cased names, RFC 2047 decoded), the content type and every leaf
        part's content type and decoded content.

aiosmtpd's Controller would serve in a thread on a fixed port; the server is
made here on the asyncio loop directly, the way the Controller makes it, so
that port 0 works and the chosen port can be printed.
"""

import asyncio
import json
import os
import stat
import sys
import threading
from email import policy
from email.parser import BytesParser


def serve(maildir: str, port: int) -> None:
    from aiosmtpd.handlers import Mailbox
    from aiosmtpd.smtp import SMTP

    # mailbox.Maildir makes its directories only when the path is missing;
    # the tests give it an empty temporary directory.
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = Mailbox(maildir)
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sightline-test-smtp"), host="127.0.0.1", port=port
        )
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        stop = asyncio.Event()
        if stat.S_ISFIFO(os.fstat(0).st_mode):

            def wait_for_eof() -> None:
                sys.stdin.buffer.read()
                loop.call_soon_threadsafe(stop.set)

            threading.Thread(target=wait_for_eof, daemon=True).start()
        async with server:
            await stop.wait()

    asyncio.run(main())


def dump(path: str) -> None:
    with open(path, "rb") as f:
        message = BytesParser(policy=policy.default).parse(f)
    parts = [
        {"content_type": part.get_content_type(), "charset": part.get_content_charset(), "content": part.get_content()}
        for part in message.walk()
        if not part.is_multipart()
    ]
    headers = {name.lower(): str(value) for name, value in message.items()}
    print(json.dumps({"headers": headers, "content_type": message.get_content_type(), "parts": parts}))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    else:
        sys.exit(__doc__)
