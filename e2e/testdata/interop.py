"""The interop suite's Python clients: paramiko and asyncssh, as scripts
use them. Usage: interop.py LIBRARY MODE ARG...

  exec LOGIN COMMAND   run COMMAND (stdin, stdout and stderr passed
                       through byte for byte; exits with its status)
  pty LOGIN COMMAND    the same on a terminal: the gateway's prompts come
                       in-band, the caller answers them on stdin
  subsystem NAME       a subsystem (rr-admin) on a key-alone login
  get PATH DEST        download PATH over SFTP
  scp PATH DEST        download PATH over the legacy scp protocol

Keyboard-interactive prompts (a login that names the host) are answered
from RR_USERNAME, RR_PASSWORD, RR_TEAM, RR_PASSPHRASE and RR_CODE. The
connection: RR_HOST, RR_PORT, RR_KEY (private key file), RR_KNOWN_HOSTS
(OpenSSH known_hosts with the gateway's key)."""

import os
import sys
import threading

env = os.environ


def answer(prompt):
    for word, var in (("Username", "RR_USERNAME"), ("Password", "RR_PASSWORD"), ("Team", "RR_TEAM"),
                      ("Passphrase for", "RR_PASSPHRASE"), ("code", "RR_CODE")):
        if word in prompt:
            return env.get(var, "")
    return ""


def pump_stdin(write, close):
    while True:
        b = os.read(0, 32768)
        if not b:
            break
        write(b)
    close()


def with_paramiko(mode, args):
    import paramiko

    t = paramiko.Transport((env["RR_HOST"], int(env["RR_PORT"])))
    t.start_client(timeout=20)
    hk = paramiko.hostkeys.HostKeys(env["RR_KNOWN_HOSTS"])
    key = t.get_remote_server_key()
    known = hk.lookup("[%s]:%s" % (env["RR_HOST"], env["RR_PORT"]))
    if not known or known.get(key.get_name()) != key:
        sys.exit("host key mismatch")
    login = args[0] if mode in ("exec", "pty") else "rr"
    if "+" in login:
        # A login that asks questions: paramiko cannot go on after a key's
        # partial success, so keyboard-interactive alone (username and
        # password first).
        t.auth_interactive(login, lambda title, instr, prompts: [answer(p) for p, _ in prompts])
    else:
        t.auth_publickey(login, paramiko.Ed25519Key.from_private_key_file(env["RR_KEY"]))
    if mode == "get":
        sftp = paramiko.SFTPClient.from_transport(t)
        sftp.get(args[0], args[1])
        return 0
    ch = t.open_session()
    if mode == "pty":
        ch.get_pty(term="xterm", width=80, height=24)
    if mode == "subsystem":
        ch.invoke_subsystem(args[0])
    else:
        ch.exec_command(args[1])
    threading.Thread(target=pump_stdin, args=(ch.sendall, ch.shutdown_write), daemon=True).start()

    def copy(read, fd):
        while True:
            b = read(32768)
            if not b:
                return
            os.write(fd, b)

    errt = threading.Thread(target=copy, args=(ch.recv_stderr, 2))
    errt.start()
    copy(ch.recv, 1)
    errt.join()
    return ch.recv_exit_status()


async def with_asyncssh(mode, args):
    import asyncssh

    login = args[0] if mode in ("exec", "pty") else "rr"

    class Client(asyncssh.SSHClient):
        def kbdint_auth_requested(self):
            return ""

        def kbdint_challenge_received(self, name, instructions, lang, prompts):
            return [answer(p) for p, _ in prompts]

    async with asyncssh.connect(env["RR_HOST"], port=int(env["RR_PORT"]), username=login,
                                client_keys=[env["RR_KEY"]], known_hosts=env["RR_KNOWN_HOSTS"],
                                client_factory=Client, agent_path=None, preferred_auth="publickey,keyboard-interactive") as conn:
        if mode == "get":
            async with conn.start_sftp_client() as sftp:
                await sftp.get(args[0], args[1])
            return 0
        if mode == "scp":
            await asyncssh.scp((conn, args[0]), args[1])
            return 0
        kw = {"encoding": None}
        if mode == "pty":
            kw.update(term_type="xterm", term_size=(80, 24))
        if mode == "subsystem":
            proc = await conn.create_process(subsystem=args[0], **kw)
        else:
            proc = await conn.create_process(args[1], **kw)
        import asyncio

        loop = asyncio.get_running_loop()

        async def feed():
            while True:
                b = await loop.run_in_executor(None, os.read, 0, 32768)
                if not b:
                    break
                proc.stdin.write(b)
            proc.stdin.write_eof()

        async def drain(stream, fd):
            while True:
                b = await stream.read(32768)
                if not b:
                    return
                os.write(fd, b)

        feeder = asyncio.ensure_future(feed())
        await asyncio.gather(drain(proc.stdout, 1), drain(proc.stderr, 2))
        await proc.wait()
        feeder.cancel()
        return proc.exit_status or 0


def main():
    lib, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if lib == "paramiko":
        code = with_paramiko(mode, args)
    else:
        import asyncio

        code = asyncio.run(with_asyncssh(mode, args))
    sys.stdout.flush()
    os._exit(code if code is not None else 255)


if __name__ == "__main__":
    main()
