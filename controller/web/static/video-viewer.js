// Watch a drone's camera over WebRTC: recv-only offer to /api/v1/video/watch, the answer back, play.
"use strict";

async function watchFeed(api, droneId, kind, videoEl) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (ev) => { videoEl.srcObject = ev.streams[0] || new MediaStream([ev.track]); videoEl.play().catch(() => {}); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {  // send the offer with its ICE candidates (non-trickle signalling)
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 2000);
  });
  const answer = await api.call("POST", "/api/v1/video/watch", { drone_id: droneId, kind, sdp: pc.localDescription.sdp, type: "offer" });
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  return {
    pc, viewerId: answer.viewer_id,
    async close() {
      try { await api.call("DELETE", `/api/v1/video/viewers/${answer.viewer_id}`); } catch (e) { /* already gone */ }
      pc.close();
    },
  };
}
