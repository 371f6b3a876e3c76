//! Async request/reply client for the `mptcp_pm` family: one method per command.

use std::{fmt, net::SocketAddr};

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_generic::GenlMessage;
use tokio::sync::{mpsc, oneshot};

use super::{
    Endpoint, EndpointFlags, EventStream, Limits, NewSubflow, PmError, SubflowPath,
    driver::{Driver, Job},
    socket::NlSocket,
    wire::{
        Address, FAMILY_NAME, Family, PmMessage, Request, WireError, decode_genl, encode_request,
        frames, get_family_request,
    },
};

/// Handle to the kernel's path manager in the caller's network namespace.
///
/// A task spawned on the current tokio runtime owns the socket; handles are cheap to clone
/// and requests from any of them are pipelined, their replies matched by sequence number.
/// The task ends when the last handle is dropped. Requests have no timeout of their own (the
/// kernel answers every one); wrap them in `tokio::time::timeout` where a bound is wanted.
#[derive(Clone)]
pub struct PmClient {
    jobs: mpsc::UnboundedSender<Job>,
    family: Family,
}

impl fmt::Debug for PmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PmClient")
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

impl PmClient {
    /// Opens a socket and resolves the `mptcp_pm` family. Needs a tokio runtime.
    pub async fn connect() -> Result<Self, PmError> {
        let socket = NlSocket::open()?;
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(Driver::new(socket, rx).run());
        let request = encode_request(
            0,
            get_family_request(FAMILY_NAME),
            NLM_F_REQUEST | NLM_F_ACK,
            0,
        );
        let replies = match exchange(&jobs, request, false).await {
            Err(PmError::Kernel(err)) => return Err(PmError::FamilyUnavailable(err)),
            other => other?,
        };
        let [reply] = replies.as_slice() else {
            return Err(PmError::ReplyCount(replies.len()));
        };
        let frame = frames(reply).next().ok_or(WireError::Truncated)??;
        let genl = frame.payload().get(4..).ok_or(WireError::Truncated)?;
        let family = Family::parse(genl)?;
        tracing::debug!(
            id = family.id,
            version = family.version,
            "resolved mptcp_pm"
        );
        Ok(Self { jobs, family })
    }

    /// The family as the kernel described it: id, multicast groups, supported commands.
    #[must_use]
    pub const fn family(&self) -> &Family {
        &self.family
    }

    /// Subscribes to the events group on a new socket (needs `CAP_NET_ADMIN`).
    pub fn subscribe(&self) -> Result<EventStream, PmError> {
        EventStream::subscribe(&self.family)
    }

    /// Sends any request; returns the messages the kernel answered with (none for commands
    /// that are only acknowledged).
    pub async fn request(&self, request: &Request) -> Result<Vec<PmMessage>, PmError> {
        let flags = if request.is_dump() {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST | NLM_F_ACK
        };
        let message = encode_request(self.family.id, request.to_message(), flags, 0);
        let replies = exchange(&self.jobs, message, request.is_dump()).await?;
        replies.iter().map(|bytes| decode_reply(bytes)).collect()
    }

    /// `ADD_ADDR`: adds an endpoint (id 0: the kernel picks one). `EEXIST` for a duplicate,
    /// `ERANGE` beyond 8 endpoints.
    pub async fn add_addr(&self, endpoint: &Endpoint) -> Result<(), PmError> {
        self.ack(&Request::AddAddr(endpoint.to_address())).await
    }

    /// `DEL_ADDR`: deletes the endpoint with this id.
    pub async fn del_addr(&self, id: u8) -> Result<(), PmError> {
        self.ack(&Request::DelAddr(Address {
            id: Some(id),
            ..Address::default()
        }))
        .await
    }

    /// `GET_ADDR`: the endpoint with this id.
    pub async fn get_addr(&self, id: u8) -> Result<Endpoint, PmError> {
        let addr = Address {
            id: Some(id),
            ..Address::default()
        };
        self.one(&Request::GetAddr { addr, token: None })
            .await?
            .endpoint()
            .map_err(Into::into)
    }

    /// `GET_ADDR` dump: every endpoint, implicit ones included.
    pub async fn dump_addrs(&self) -> Result<Vec<Endpoint>, PmError> {
        self.endpoints(&Request::DumpAddrs { token: None }).await
    }

    /// `GET_ADDR` dump with a token: the local addresses of a userspace-PM connection.
    pub async fn dump_addrs_for(&self, token: u32) -> Result<Vec<Endpoint>, PmError> {
        self.endpoints(&Request::DumpAddrs { token: Some(token) })
            .await
    }

    /// `FLUSH_ADDRS`: deletes every endpoint.
    pub async fn flush_addrs(&self) -> Result<(), PmError> {
        self.ack(&Request::FlushAddrs).await
    }

    /// `SET_LIMITS` (each at most 8, else `EINVAL`).
    pub async fn set_limits(&self, limits: Limits) -> Result<(), PmError> {
        let Limits {
            add_addr_accepted,
            subflows,
        } = limits;
        self.ack(&Request::SetLimits {
            add_addr_accepted: Some(add_addr_accepted),
            subflows: Some(subflows),
        })
        .await
    }

    /// `GET_LIMITS`.
    pub async fn get_limits(&self) -> Result<Limits, PmError> {
        self.one(&Request::GetLimits)
            .await?
            .limits()
            .map_err(Into::into)
    }

    /// `SET_FLAGS` on the endpoint with this id (the kernel changes `backup` and `fullmesh`).
    pub async fn set_flags(&self, id: u8, flags: EndpointFlags) -> Result<(), PmError> {
        let local = Address {
            id: Some(id),
            flags: Some(flags),
            ..Address::default()
        };
        self.ack(&Request::SetFlags {
            token: None,
            local,
            remote: None,
        })
        .await
    }

    /// `SET_FLAGS` with a token (userspace PM): sets or clears `backup` on the connection's
    /// subflows from `local` to `remote` and sends `MP_PRIO`. A port of 0 matches any port.
    pub async fn set_flags_for(
        &self,
        subflow: SubflowPath,
        flags: EndpointFlags,
    ) -> Result<(), PmError> {
        let local = Address {
            flags: Some(flags),
            ..socket_address(subflow.local)
        };
        self.ack(&Request::SetFlags {
            token: Some(subflow.token),
            local,
            remote: Some(socket_address(subflow.remote)),
        })
        .await
    }

    /// ANNOUNCE (userspace PM): advertises `local` (id 1..=255, optional port) to the peer;
    /// the `signal` flag is added. Joins to it need a listening socket on it.
    pub async fn announce(&self, token: u32, local: &Endpoint) -> Result<(), PmError> {
        let mut local = local.to_address();
        local.flags = Some(local.flags.unwrap_or_default() | EndpointFlags::SIGNAL);
        self.ack(&Request::Announce { token, local }).await
    }

    /// REMOVE (userspace PM): withdraws the local address `id` and closes its subflows.
    pub async fn remove(&self, token: u32, id: u8) -> Result<(), PmError> {
        self.ack(&Request::Remove {
            token,
            local_id: id,
        })
        .await
    }

    /// `SUBFLOW_CREATE` (userspace PM): opens the subflow.
    pub async fn subflow_create(&self, subflow: &NewSubflow) -> Result<(), PmError> {
        self.ack(&Request::SubflowCreate {
            token: subflow.token,
            local: subflow.local.to_address(),
            remote: socket_address(subflow.remote),
        })
        .await
    }

    /// `SUBFLOW_DESTROY` (userspace PM): closes the subflow between these two sockets.
    pub async fn subflow_destroy(&self, subflow: SubflowPath) -> Result<(), PmError> {
        self.ack(&Request::SubflowDestroy {
            token: subflow.token,
            local: socket_address(subflow.local),
            remote: socket_address(subflow.remote),
        })
        .await
    }

    async fn ack(&self, request: &Request) -> Result<(), PmError> {
        let replies = self.request(request).await?;
        if replies.is_empty() {
            Ok(())
        } else {
            Err(PmError::ReplyCount(replies.len()))
        }
    }

    async fn one(&self, request: &Request) -> Result<PmMessage, PmError> {
        let mut replies = self.request(request).await?;
        match replies.pop() {
            Some(reply) if replies.is_empty() => Ok(reply),
            _ => Err(PmError::ReplyCount(replies.len() + 1)),
        }
    }

    async fn endpoints(&self, request: &Request) -> Result<Vec<Endpoint>, PmError> {
        let replies = self.request(request).await?;
        replies
            .iter()
            .map(|m| m.endpoint().map_err(Into::into))
            .collect()
    }
}

/// An address nest for an address and port (port 0: none).
fn socket_address(addr: SocketAddr) -> Address {
    let port = (addr.port() != 0).then_some(addr.port());
    Address {
        addr: Some(addr.ip()),
        port,
        ..Address::default()
    }
}

/// Queues a request and waits for its answer.
async fn exchange(
    jobs: &mpsc::UnboundedSender<Job>,
    message: Vec<u8>,
    dump: bool,
) -> super::driver::Replies {
    let (reply, answer) = oneshot::channel();
    jobs.send(Job {
        message,
        dump,
        reply,
    })
    .map_err(|_| PmError::Closed)?;
    answer.await.map_err(|_| PmError::Closed)?
}

/// Decodes one data message of the family (the driver hands over nothing else).
fn decode_reply(bytes: &[u8]) -> Result<PmMessage, PmError> {
    let frame = frames(bytes).next().ok_or(WireError::Truncated)??;
    let genl: GenlMessage<PmMessage> = decode_genl(&frame)?;
    Ok(genl.payload)
}
