//! Checks an API-format graph against a ComfyUI server's `/object_info`. (Work in progress.)
