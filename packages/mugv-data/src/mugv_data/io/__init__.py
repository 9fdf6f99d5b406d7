"""Video decoding/encoding and input listing."""
