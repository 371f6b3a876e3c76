//! The rtnetlink side: subscriptions, dumps, route lookups, and the task that feeds the
//! state machine. Everything it decides is in `state`; this file only moves messages.

use std::{
    collections::{HashSet, VecDeque},
    net::IpAddr,
};

use futures_util::{FutureExt as _, StreamExt as _, stream::BoxStream};
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload, NetlinkSerializable as _,
};
use netlink_proto::{
    ConnectionHandle,
    sys::{AsyncSocket as _, SocketAddr, protocols::NETLINK_ROUTE},
};
use tokio::{
    sync::{
        mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel},
        oneshot, watch,
    },
    task::JoinHandle,
};
use tracing::{debug, warn};

use super::{
    NetmonError, RequestError, decode,
    flags::NotifyFlags,
    model::{Interface, LocalAddress, NetEvent},
    policy::AddressFilter,
    routing,
    state::{Input, NetState, Output, RouteCheck},
    wire::{Address, Link, RTM_NEWADDR, RTM_NEWLINK, Route, RtMessage},
};

/// Receive buffer of the notification socket (the kernel doubles it): twice the `mptcp_pm`
/// event socket's, as a link notification (with its statistics) is several times the size of
/// a path-manager event. Forced past `rmem_max`; a burst that still overflows it is recovered
/// by dumping again.
pub const NOTIFY_RECEIVE_BUFFER: usize = 8 << 20;

/// Addresses of adopted endpoints, and who waits until their events are queued.
type Adopted = (Vec<(Option<u32>, IpAddr)>, oneshot::Sender<()>);

/// Notifications as netlink-proto hands them over.
type Notifications = BoxStream<'static, (NetlinkMessage<RtMessage>, SocketAddr)>;

/// Requests (dumps and route lookups) to the kernel.
type Handle = ConnectionHandle<RtMessage>;

/// `RTNLGRP_*` (linux/rtnetlink.h): link changes.
const RTNLGRP_LINK: u32 = 1;
/// IPv4 address changes.
const RTNLGRP_IPV4_IFADDR: u32 = 5;
/// IPv4 route changes.
const RTNLGRP_IPV4_ROUTE: u32 = 7;
/// IPv6 address changes.
const RTNLGRP_IPV6_IFADDR: u32 = 9;
/// IPv6 route changes.
const RTNLGRP_IPV6_ROUTE: u32 = 11;

/// A running network monitor: links and addresses of this network namespace, as events.
///
/// Dropping it stops the monitor and closes its sockets.
#[derive(Debug)]
pub struct NetworkMonitor {
    events: UnboundedReceiver<NetEvent>,
    flags: watch::Sender<NotifyFlags>,
    filter: watch::Sender<AddressFilter>,
    adopted: UnboundedSender<Adopted>,
    task: Option<JoinHandle<Result<(), NetmonError>>>,
}

impl NetworkMonitor {
    /// Subscribes to link, address (and with `check_route`, route) notifications, then dumps
    /// links and addresses. Returns once the dump is applied: its events are already queued.
    ///
    /// Must run inside a tokio runtime, in the network namespace to monitor (the sockets are
    /// created here).
    pub async fn start(flags: NotifyFlags) -> Result<Self, NetmonError> {
        Self::start_with_filter(flags, AddressFilter::default()).await
    }

    /// [`Self::start`], reporting only the interfaces and addresses `filter` allows.
    pub async fn start_with_filter(
        flags: NotifyFlags,
        filter: AddressFilter,
    ) -> Result<Self, NetmonError> {
        let mut groups = vec![RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR];
        if flags.contains(NotifyFlags::CHECK_ROUTE) {
            groups.extend([RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE]);
        }
        // Subscribed before the dump, so that nothing between the two is lost: the groups
        // (all below 32) joined by binding with their bitmask, as `ip monitor` does.
        let (mut notify_conn, _, notifications) =
            netlink_proto::new_connection::<RtMessage>(NETLINK_ROUTE)
                .map_err(NetmonError::Socket)?;
        let mask = groups.iter().fold(0, |mask, group| mask | 1 << (group - 1));
        notify_conn
            .socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, mask))
            .map_err(NetmonError::Socket)?;
        // Past rmem_max, as the mptcp_pm event socket: an overrun costs a full re-dump.
        if let Err(e) = mptcpd_common::rcvbuf::set_receive_buffer(
            &*notify_conn.socket_mut().socket_mut(),
            NOTIFY_RECEIVE_BUFFER,
        ) {
            warn!("could not enlarge the notification buffer: {e}");
        }
        let (request_conn, handle, _) = netlink_proto::new_connection::<RtMessage>(NETLINK_ROUTE)
            .map_err(NetmonError::Socket)?;
        let connections = [tokio::spawn(notify_conn), tokio::spawn(request_conn)];

        let (sender, events) = unbounded_channel();
        let (flags_tx, flags_rx) = watch::channel(flags);
        let (filter_tx, filter_rx) = watch::channel(filter.clone());
        let (adopted_tx, adopted_rx) = unbounded_channel();
        let mut state = NetState::new(flags);
        // Nothing is known yet: nothing to report.
        let _none = state.set_filter(filter);
        let mut worker = Worker {
            state,
            flags: flags_rx,
            filter: filter_rx,
            adopted: adopted_rx,
            handle,
            notifications: notifications.boxed(),
            events: sender,
            warned: HashSet::new(),
            connections,
        };
        worker.sync().await?;
        tracing::info!(%flags, "network monitor started");
        Ok(Self {
            events,
            flags: flags_tx,
            filter: filter_tx,
            adopted: adopted_tx,
            task: Some(tokio::spawn(worker.run())),
        })
    }

    /// The next event; `None` once the monitor has stopped (see [`Self::wait`]).
    pub async fn next_event(&mut self) -> Option<NetEvent> {
        self.events.recv().await
    }

    /// Filters later events with `flags` (a configuration reload). Addresses already
    /// reported stay so until they change; `check_route` keeps its start-up value, because
    /// route notifications are subscribed to at start only; `existing` only matters at start.
    pub fn set_flags(&self, flags: NotifyFlags) {
        self.flags.send_replace(flags);
    }

    /// Filters with `filter` from now on (a configuration reload): every interface and
    /// address is judged again at once, so what it now refuses is withdrawn and what it now
    /// allows is reported.
    pub fn set_filter(&self, filter: AddressFilter) {
        self.filter.send_replace(filter);
    }

    /// Reports these addresses (interface index, address; `None`: any interface) although
    /// they were present at start-up without `existing`: each carries an endpoint adopted
    /// from a previous run, whose plugin must learn of it. Returns once their events are
    /// queued ([`Self::try_next_event`] sees them).
    pub async fn report_adopted(&self, addrs: Vec<(Option<u32>, IpAddr)>) {
        if addrs.is_empty() {
            return;
        }
        let (done, queued) = oneshot::channel();
        // A stopped monitor answers nothing: `next_event` tells the daemon.
        if self.adopted.send((addrs, done)).is_ok() {
            let _stopped = queued.await;
        }
    }

    /// An event if one is queued, without waiting.
    pub fn try_next_event(&mut self) -> Option<NetEvent> {
        self.events.try_recv().ok()
    }

    /// Waits until the monitor stops and tells why. It stops only on a failure, so call this
    /// after [`Self::next_event`] returned `None`.
    pub async fn wait(mut self) -> Result<(), NetmonError> {
        match self.task.take() {
            Some(task) => task.await.map_err(NetmonError::Task)?,
            None => Ok(()),
        }
    }
}

impl Drop for NetworkMonitor {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The monitor task's state: the state machine and the sockets that feed it.
struct Worker {
    state: NetState,
    /// Notify flags changed while running.
    flags: watch::Receiver<NotifyFlags>,
    /// The address policy changed while running.
    filter: watch::Receiver<AddressFilter>,
    adopted: UnboundedReceiver<Adopted>,
    /// Requests (dumps and route lookups), on a socket of their own.
    handle: Handle,
    notifications: Notifications,
    events: UnboundedSender<NetEvent>,
    /// Addresses already warned about for want of a route out through their interface.
    warned: HashSet<(u32, IpAddr)>,
    connections: [JoinHandle<()>; 2],
}

impl Drop for Worker {
    fn drop(&mut self) {
        for connection in &self.connections {
            connection.abort();
        }
    }
}

impl Worker {
    /// Applies notifications until the receiver is dropped or the socket fails.
    async fn run(mut self) -> Result<(), NetmonError> {
        loop {
            let next = tokio::select! {
                () = self.events.closed() => return Ok(()),
                Ok(()) = self.flags.changed() => {
                    let flags = *self.flags.borrow_and_update();
                    self.state.set_flags(flags);
                    debug!(flags = %self.state.flags(), "notify flags changed");
                    continue;
                }
                Ok(()) = self.filter.changed() => {
                    let filter = self.filter.borrow_and_update().clone();
                    debug!(?filter, "address policy changed");
                    let outputs = self.state.set_filter(filter);
                    self.carry_out(outputs).await?;
                    continue;
                }
                Some((addrs, done)) = self.adopted.recv() => {
                    for (ifindex, addr) in addrs {
                        self.apply(Input::Adopted { ifindex, addr }).await?;
                    }
                    let _unheard = done.send(());
                    continue;
                }
                next = self.notifications.next() => next,
            };
            let Some((message, _)) = next else {
                return Err(NetmonError::Closed);
            };
            self.handle_message(message).await?;
        }
    }

    async fn handle_message(
        &mut self,
        message: NetlinkMessage<RtMessage>,
    ) -> Result<(), NetmonError> {
        match message.payload {
            NetlinkPayload::InnerMessage(inner) => {
                if let Some(input) = decode::input(&inner) {
                    self.apply(input).await?;
                }
            }
            NetlinkPayload::Overrun(_) => {
                warn!("rtnetlink notifications were lost; dumping links and addresses again");
                // The dump supersedes what is queued now; replaying it would only cost time.
                while let Some(Some(_)) = self.notifications.next().now_or_never() {}
                self.sync().await?;
            }
            other => debug!(kind = other.message_type(), "netlink message ignored"),
        }
        Ok(())
    }

    /// Dumps links then addresses and applies them as one snapshot.
    async fn sync(&mut self) -> Result<(), NetmonError> {
        let get_links = RtMessage::GetLink(Link::default());
        let links = dump(&self.handle, "links", get_links, RTM_NEWLINK).await?;
        let get_addresses = RtMessage::GetAddress(Address::default());
        let addresses = dump(&self.handle, "addresses", get_addresses, RTM_NEWADDR).await?;
        debug!(
            links = links.len(),
            addresses = addresses.len(),
            "dump received"
        );
        self.apply(Input::DumpStarted).await?;
        for link in &links {
            if let RtMessage::NewLink(link) = link
                && let Some(info) = decode::link(link)
            {
                self.apply(Input::NewLink(info)).await?;
            }
        }
        for address in &addresses {
            if let RtMessage::NewAddress(address) = address
                && let Some(info) = decode::address(address)
            {
                self.apply(Input::NewAddress(info)).await?;
            }
        }
        self.apply(Input::DumpFinished).await
    }

    /// Applies `input` and carries out what the state machine asks, route lookups included.
    async fn apply(&mut self, input: Input) -> Result<(), NetmonError> {
        let outputs = self.state.apply(input);
        self.carry_out(outputs).await
    }

    /// Delivers the events and performs the route lookups the state machine asked for.
    async fn carry_out(&mut self, outputs: Vec<Output>) -> Result<(), NetmonError> {
        let mut todo = VecDeque::from(outputs);
        while let Some(output) = todo.pop_front() {
            match output {
                Output::Event(event) => {
                    debug!(?event, "network event");
                    let reported = match &event {
                        NetEvent::NewLocalAddress { interface, address } => {
                            Some((interface.clone(), *address))
                        }
                        _ => None,
                    };
                    // A dropped receiver ends `run`; until then there is nothing to do.
                    let _unheard = self.events.send(event);
                    if let Some((interface, address)) = reported {
                        self.check_routing(&interface, &address).await;
                    }
                }
                Output::CheckRoute(check) => {
                    let routable = lookup(&self.handle, &check).await?;
                    debug!(address = %check.addr, ifindex = check.ifindex, routable, "route checked");
                    todo.extend(self.state.apply(Input::RouteChecked { check, routable }));
                }
            }
        }
        Ok(())
    }

    /// Warns, once per address, when traffic from a reported address has no default route out
    /// through its own interface (its subflows would never establish). A failed lookup is
    /// no reason to stop the monitor: it is only logged.
    async fn check_routing(&mut self, interface: &Interface, address: &LocalAddress) {
        let key = (address.ifindex, address.addr);
        if !routing::worth_checking(address) || self.warned.contains(&key) {
            return;
        }
        let check = RouteCheck {
            id: 0,
            ifindex: address.ifindex,
            addr: address.addr,
        };
        let request = decode::source_route_lookup(&check);
        match lookup_with(&self.handle, request, &check).await {
            Ok(true) => {}
            Ok(false) => {
                self.warned.insert(key);
                warn!(
                    "{}",
                    routing::unrouted_warning(address.addr, &interface.name)
                );
            }
            Err(e) => debug!(address = %address.addr, "routing sanity lookup: {e}"),
        }
    }
}

/// Whether a default route leaves through the address's interface now.
async fn lookup(handle: &Handle, check: &RouteCheck) -> Result<bool, NetmonError> {
    lookup_with(handle, decode::route_lookup(check), check).await
}

/// Sends `request` as a dump of `what` and collects its entries, all of type `entry`
/// (netlink-proto ends the stream at `NLMSG_DONE`).
async fn dump(
    handle: &Handle,
    what: &'static str,
    request: RtMessage,
    entry: u16,
) -> Result<Vec<RtMessage>, NetmonError> {
    let failed = |source| NetmonError::Dump { what, source };
    let mut request = NetlinkMessage::from(request);
    request.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut replies = handle
        .request(request, SocketAddr::new(0, 0))
        .map_err(|e| failed(RequestError::Send(e)))?;
    let mut entries = Vec::new();
    while let Some(reply) = replies.next().await {
        match reply.payload {
            NetlinkPayload::InnerMessage(inner) if inner.message_type() == entry => {
                entries.push(inner);
            }
            NetlinkPayload::Error(e) => return Err(failed(RequestError::Kernel(e.to_io()))),
            other => return Err(failed(RequestError::Unexpected(other.message_type()))),
        }
    }
    Ok(entries)
}

/// Whether the answers to `request` show a default route through `check.ifindex`.
async fn lookup_with(
    handle: &Handle,
    request: Route,
    check: &RouteCheck,
) -> Result<bool, NetmonError> {
    let mut request = NetlinkMessage::from(RtMessage::GetRoute(request));
    // With a destination: one answer, not a dump.
    request.header.flags = NLM_F_REQUEST;
    let mut replies = handle
        .request(request, SocketAddr::new(0, 0))
        .map_err(|e| NetmonError::Lookup(RequestError::Send(e)))?;
    let mut routable = false;
    while let Some(reply) = replies.next().await {
        match reply.payload {
            NetlinkPayload::InnerMessage(RtMessage::NewRoute(route)) => {
                routable |= decode::leaves_through(&route, check.ifindex);
            }
            // No route through that interface (ENETUNREACH and the like).
            NetlinkPayload::Error(e) => {
                debug!(address = %check.addr, "no default route: {e}");
            }
            other => {
                return Err(NetmonError::Lookup(RequestError::Unexpected(
                    other.message_type(),
                )));
            }
        }
    }
    Ok(routable)
}
