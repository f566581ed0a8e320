// Watch a drone's camera over WebRTC with WHEP: POST the recv-only SDP offer to /api/v1/whep/{drone}/{kind}
// (application/sdp), play the answer, DELETE the resource (the answer's Location) to stop.
"use strict";

async function watchFeed(api, droneId, kind, videoEl) {
  const pc = new RTCPeerConnection();
  let resource = null;
  try {
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (ev) => { videoEl.srcObject = ev.streams[0] || new MediaStream([ev.track]); videoEl.play().catch(() => {}); };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {  // send the offer with its ICE candidates (the controller does not trickle)
      if (pc.iceGatheringState === "complete") return resolve();
      const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 2000);
    });
    const res = await api.raw("POST", `/api/v1/whep/${encodeURIComponent(droneId)}/${encodeURIComponent(kind)}`,
      pc.localDescription.sdp, "application/sdp");
    resource = new URL(res.headers.get("Location"), location.href).pathname;
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    let closed = false;
    return {
      pc, viewerId: resource.split("/").pop(), resource,
      async close() {
        if (closed) return;
        closed = true;
        try { await api.raw("DELETE", resource); } catch (e) { /* already gone */ }
        pc.close();
      },
    };
  } catch (err) {
    if (resource) api.raw("DELETE", resource).catch(() => {});  // answered but unusable here: free the viewer
    pc.close();
    throw err;
  }
}
