#!/usr/bin/env bash
# Profile cards and posters draw Chinese text; install a CJK font when one is missing and we may.
# Best effort: without it the renderer falls back to Pillow's own font (Latin only).
set -u
for f in /usr/share/fonts/truetype/wqy/wqy-microhei.ttc /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc; do
  [ -f "$f" ] && exit 0
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "fonts: installing fonts-wqy-microhei for Chinese text in images"
  (apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1; }) ||
    echo "fonts: could not install a CJK font; images will use a Latin-only fallback"
else
  echo "fonts: no CJK font found; install fonts-wqy-microhei for Chinese text in images"
fi
exit 0
