# bucketsync in a container: the official Node 20 image, built here, run as the unprivileged
# `node` user. Credentials come only from the environment (AWS_ACCESS_KEY_ID, ...) or a mounted
# AWS config (-v ~/.aws:/home/node/.aws:ro); nothing secret is baked into the image.
FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm pack && mv bucketsync-*.tgz /tmp/bucketsync.tgz

FROM node:20-slim
COPY --from=build /tmp/bucketsync.tgz /tmp/bucketsync.tgz
RUN npm install -g --no-audit --no-fund /tmp/bucketsync.tgz && rm /tmp/bucketsync.tgz && npm cache clean --force
USER node
WORKDIR /home/node
ENTRYPOINT ["bucketsync"]
CMD ["--help"]
