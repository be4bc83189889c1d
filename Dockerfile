FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY tools/lint/package.json tools/lint/package.json
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev
USER node
EXPOSE 4000
CMD ["node", "dist/server/main.js", "serve"]
