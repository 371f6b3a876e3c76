#!/usr/bin/python3
"""A path manager outside mptcpd, over D-Bus (docs/dbus.md, "External path managers").

Policy: once a connection this host opened is established, one subflow from each other
interface (its first usable address of the connection's family) to the peer's address and
port. Nothing on connections this host accepted.

Run it as root (or a member of the dbus-group) in mptcpd's network namespace, with the
userspace path manager (net.mptcp.pm_type=1). It handles every new connection until it stops;
then mptcpd's default plugin takes them back. Debian's python3-dbus-next (cargo xtask setup
installs it); DBUS_SYSTEM_BUS_ADDRESS names another bus.

    /usr/bin/python3 plugins/examples/external_pm.py [--remote-port PORT]
"""

import argparse
import asyncio
import ipaddress
import json
import subprocess

from dbus_next import BusType, Variant
from dbus_next.aio import MessageBus
from dbus_next.errors import DBusError

BUS_NAME = "org.mptcpd.Mptcpd"
PATH = "/org/mptcpd/Mptcpd"
CONTROL = "org.mptcpd.Control1"


def log(line):
    # Line by line: the test reads it as it comes.
    print(line, flush=True)


def host_and_port(text):
    """'192.0.2.1:80' or '[2001:db8::1]:80' as (address, port)."""
    host, _, port = text.rpartition(":")
    return ipaddress.ip_address(host.strip("[]")), int(port)


def addresses_by_interface():
    """{interface: [addresses]}, without loopback and link-local addresses."""
    shown = json.loads(subprocess.run(["ip", "-j", "address", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    found = {}
    for link in shown:
        for info in link.get("addr_info", []):
            addr = ipaddress.ip_address(info["local"])
            if not (addr.is_loopback or addr.is_link_local):
                found.setdefault(link["ifname"], []).append(addr)
    return found


class PathManager:
    def __init__(self, control):
        self.control = control
        # Userspace-PM address ids, one per local address, 1..=255.
        self.ids = {}

    def address_id(self, addr):
        return self.ids.setdefault(addr, len(self.ids) + 1)

    async def established(self, token, details):
        if details["server_side"].value:
            return
        local, _ = host_and_port(details["local"].value)
        remote = details["remote"].value
        remote_addr, _ = host_and_port(remote)
        for iface, addrs in addresses_by_interface().items():
            if local in addrs:
                continue  # the initial subflow's interface
            same_family = [a for a in addrs if a.version == remote_addr.version]
            if not same_family:
                continue
            addr = same_family[0]
            try:
                await self.control.call_create_subflow(token, str(addr), self.address_id(addr),
                                                       remote)
                log(f"subflow from {addr} ({iface}) to {remote}: requested")
            except DBusError as e:
                log(f"subflow from {addr} ({iface}) to {remote}: {e.type}: {e.text}")

    def on_event(self, kind, token, details):
        if kind == "established":
            asyncio.ensure_future(self.established(token, details))
        elif kind in ("created", "closed", "subflow_established", "subflow_closed"):
            shown = {k: v.value for k, v in details.items()}
            log(f"{kind} {shown}")


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remote-port", type=int, help="only connections to this port")
    args = parser.parse_args()
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    introspection = await bus.introspect(BUS_NAME, PATH)
    control = bus.get_proxy_object(BUS_NAME, PATH, introspection).get_interface(CONTROL)
    manager = PathManager(control)
    control.on_claimed_event(manager.on_event)
    rule = {"remote_port": Variant("q", args.remote_port)} if args.remote_port else {}
    try:
        await control.call_register_path_manager(rule)
    except DBusError as e:
        raise SystemExit(f"external_pm: {e.type}: {e.text}")
    log(f"registered as {bus.unique_name}")
    await bus.wait_for_disconnect()


if __name__ == "__main__":
    asyncio.run(main())
