# One image for the operator and every consumer pod: /kafkasub manager | consumer | ...
FROM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY main.go ./
COPY api/ api/
COPY controllers/ controllers/
COPY consumer/ consumer/
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w" -o /kafkasub .

FROM gcr.io/distroless/static:nonroot
COPY --from=builder /kafkasub /kafkasub
USER 65532:65532
ENTRYPOINT ["/kafkasub"]
