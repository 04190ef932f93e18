# Moodwire server image: Node 20 on Debian bookworm with the system ffmpeg.
#   docker build -t moodwire .
#   docker run -p 3000:3000 -e MOODWIRE_API_KEYS=<16+ characters> -v moodwire-data:/data moodwire
# HOST is 0.0.0.0 here, so the server refuses to start without MOODWIRE_API_KEYS (or
# MOODWIRE_API_KEYS_FILE), or MOODWIRE_AUTH=off, which serves anyone without credentials.
# compose.yaml runs two of these behind nginx with Redis, Prometheus and Grafana.
FROM node:20-bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so a source change does not reinstall them. tsx (a devDependency) runs the
# TypeScript server, so the dev dependencies stay. The optional @tensorflow/tfjs-node(-gpu) are
# skipped where their download fails; the server then runs on WebAssembly (EMOTION_BACKEND=wasm).
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund \
 && npm cache clean --force

COPY . .
RUN npm run build:client \
 && mkdir -p /data /uploads \
 && chown node:node /data /uploads

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    MOODWIRE_DATA_DIR=/data \
    FFMPEG_PATH=ffmpeg \
    FFPROBE_PATH=ffprobe

# The video job database and uploads (VIDEO_UPLOAD_DIR defaults to /data/video/uploads; compose
# shares /uploads between nodes instead).
VOLUME ["/data"]
EXPOSE 3000

USER node

# /healthz answers once the process is up (readiness, after the models warm up, is /readyz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node itself is PID 1 (no npm, no shell): SIGTERM reaches the server, which drains within
# SHUTDOWN_GRACE_MS (5 s); give the container a longer stop timeout (compose: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "server/main.ts"]
