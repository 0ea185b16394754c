"""Calls Kiln's POST /v1/images/edits through the official `openai` client, as a user of
that client would; prints the first image URL. Run by tests/tests/openai_client.rs.

Usage: openai_edit.py BASE_URL API_KEY IMAGE_PATH
"""

import sys

from openai import OpenAI

base_url, api_key, image_path = sys.argv[1:4]
client = OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=120)
with open(image_path, "rb") as image:
    result = client.images.edit(image=image, prompt="the same kiln, at night", size="512x512", n=2)
print(len(result.data))
for item in result.data:
    print(item.url)
