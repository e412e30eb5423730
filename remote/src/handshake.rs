//! Both sides of the handshake: Hello (version, identity, forwarder nonce) → Challenge
//! (gateway nonce and proof) → Auth (forwarder proof) → Welcome or Refused. Each side
//! proves it holds the pre-shared key before the other sends anything that matters.

use crate::io::{send, FrameReader};
use crate::RemoteError;
use dpfs_remote_wire::auth::Role;
use dpfs_remote_wire::{Key, Message, Nonce, RefuseReason, VERSION};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// What the gateway said yes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Welcome {
    /// The session id.
    pub session: u64,
    /// Whether the session asked for still existed.
    pub resumed: bool,
}

/// Forwarder side: runs the handshake for `identity`, resuming `resume` (0: new).
pub(crate) async fn client<R, W>(
    rd: &mut FrameReader<R>,
    wr: &mut W,
    key: &Key,
    identity: &str,
    resume: u64,
    probe: bool,
) -> Result<Welcome, RemoteError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mine = Nonce::random()?;
    send(wr, &Message::Hello { version: VERSION, probe, resume, nonce: mine, identity }).await?;
    wr.flush().await?;
    let frame = rd.next().await?;
    let theirs = match Message::decode_from_gateway(&frame)? {
        Message::Challenge { version, .. } if version != VERSION => return Err(RemoteError::Version(version)),
        Message::Challenge { nonce, proof, .. } => {
            if !key.verify(Role::Gateway, VERSION, identity, &mine, &nonce, &proof) {
                return Err(RemoteError::GatewayAuth);
            }
            nonce
        }
        Message::Refused { reason, text } => return Err(RemoteError::Refused { reason, text: text.into() }),
        _ => return Err(RemoteError::Protocol("expected Challenge")),
    };
    let proof = key.prove(Role::Forwarder, VERSION, identity, &mine, &theirs);
    send(wr, &Message::Auth { proof }).await?;
    wr.flush().await?;
    let frame = rd.next().await?;
    match Message::decode_from_gateway(&frame)? {
        Message::Welcome { session, resumed } => {
            rd.authenticated();
            Ok(Welcome { session, resumed })
        }
        Message::Refused { reason, text } => Err(RemoteError::Refused { reason, text: text.into() }),
        _ => Err(RemoteError::Protocol("expected Welcome")),
    }
}

/// What a forwarder asked for, once it proved the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    pub identity: String,
    pub resume: u64,
    pub probe: bool,
}

/// Gateway side, up to (not including) the Welcome. A wrong version or proof is answered
/// with Refused and returned as an error.
pub(crate) async fn server<R, W>(rd: &mut FrameReader<R>, wr: &mut W, key: &Key) -> Result<Hello, RemoteError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let frame = rd.next().await?;
    let (hello, theirs) = match Message::decode_from_dpu(&frame)? {
        Message::Hello { version, probe, resume, nonce, identity } => {
            if version != VERSION {
                let text = format!("this gateway speaks protocol version {VERSION}, not {version}");
                refuse(wr, RefuseReason::Version, &text).await;
                return Err(RemoteError::Version(version));
            }
            (Hello { identity: identity.to_owned(), resume, probe }, nonce)
        }
        _ => return Err(RemoteError::Protocol("expected Hello")),
    };
    let mine = Nonce::random()?;
    let proof = key.prove(Role::Gateway, VERSION, &hello.identity, &theirs, &mine);
    send(wr, &Message::Challenge { version: VERSION, nonce: mine, proof }).await?;
    wr.flush().await?;
    let frame = rd.next().await?;
    match Message::decode_from_dpu(&frame)? {
        Message::Auth { proof } if key.verify(Role::Forwarder, VERSION, &hello.identity, &theirs, &mine, &proof) => {
            rd.authenticated();
            Ok(hello)
        }
        Message::Auth { .. } => {
            refuse(wr, RefuseReason::Auth, "authentication failed: the forwarder's key is not the gateway's").await;
            Err(RemoteError::PeerAuth)
        }
        _ => Err(RemoteError::Protocol("expected Auth")),
    }
}

/// Sends Refused (best effort: the connection closes next anyway).
pub(crate) async fn refuse<W: AsyncWrite + Unpin>(wr: &mut W, reason: RefuseReason, text: &str) {
    let _ = send(wr, &Message::Refused { reason, text }).await;
    let _ = wr.flush().await;
}
