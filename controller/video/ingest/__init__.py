"""Camera streams pulled into the relay from outside WebRTC: RTSP (rtsp.py), and where to find them (camera_info.py)."""
