//! `kumos`: one binary, one subcommand per role.

fn main() {
    println!("kumos");
}
